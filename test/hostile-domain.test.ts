/**
 * An unprivileged process domain fires malformed and unauthorised calls at
 * the hypervisor: every one is refused with an errno, the hypervisor stays
 * up and other domains are unaffected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XenError, isXenErrno } from '@xenbox/abi';
import { HypervisorConnection } from '@xenbox/libxen';
import { startHypervisor, type LoneHypervisor } from './helpers/hypervisor.js';

let hv: LoneHypervisor;
let dom0: HypervisorConnection;

beforeAll(async () => {
  hv = await startHypervisor('hostile');
  dom0 = await HypervisorConnection.connect({ runDir: hv.runDir, domid: 0, token: hv.dom0Token });
});
afterAll(async () => {
  await dom0?.close();
  await hv?.stop();
});

/** A tiny deterministic PRNG so a failure can be replayed. */
function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
}

describe('a hostile domain', () => {
  it('gets an errno for every malformed or unauthorised call and changes nothing', async () => {
    const victim = await dom0.call('domctl.createdomain', { name: 'victim', kind: 'service' });
    const v = await HypervisorConnection.connect({ runDir: hv.runDir, domid: victim.domid, token: victim.token });
    const { port: victimPort } = await v.call('evtchn.alloc_unbound', { dom: 0x7ff0, remote_dom: 0 });
    const evil = await dom0.call('domctl.createdomain', { name: 'evil', kind: 'service' });
    const e = await HypervisorConnection.connect({ runDir: hv.runDir, domid: evil.domid, token: evil.token });
    const before = await dom0.call('sysctl.getdomaininfolist', {});

    const ops = [
      'domctl.createdomain', 'domctl.destroydomain', 'domctl.pausedomain', 'domctl.max_mem', 'domctl.shutdown', 'sysctl.physinfo',
      'console_io.read', 'foreign.read', 'foreign.write', 'memory.populate_physmap', 'memory.decrease_reservation', 'memory.read',
      'memory.write', 'memory.cmpxchg', 'mirror.flush', 'mirror.sync', 'gnttab.setup_table', 'gnttab.map_grant_ref',
      'gnttab.unmap_grant_ref', 'gnttab.copy', 'evtchn.bind_interdomain', 'evtchn.send', 'evtchn.close', 'evtchn.status',
      'evtchn.unmask', 'evtchn.reset', 'evtchn.alloc_unbound', 'evtchn.bind_virq', 'no.such_op',
    ];
    const junk = [null, -1, 2 ** 40, 'x', 1.5, [], {}, new Uint8Array(5000), { a: 1 }, true, victim.domid, 0, 0x7ff0, victimPort];
    const rand = rng(42);
    const pick = <T,>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 600; i++) {
      const args: Record<string, unknown> = {};
      for (const k of ['domid', 'dom', 'gfn', 'port', 'remote_dom', 'remote_port', 'offset', 'len', 'data', 'ops', 'writes', 'mids', 'gfns', 'virq', 'vcpu', 'nr_frames', 'reason', 'name', 'kind']) {
        if (rand() < 0.4) args[k] = pick(junk);
      }
      calls.push(e.call(pick(ops) as 'xen_version', args as never).then((r) => r, (x: unknown) => x));
    }
    // Random struct gnttab_copy arrays (abi gnttab-copy.ts): every op gets a GNTST status, none reaches the victim.
    const copies: Promise<unknown>[] = [];
    for (let i = 0; i < 100; i++) {
      const ops = new Uint8Array(40 * (1 + Math.floor(rand() * 8)));
      for (let b = 0; b < ops.length; b++) ops[b] = rand() < 0.5 ? 0 : Math.floor(rand() * 256);
      const dv = new DataView(ops.buffer);
      for (let o = 0; o < ops.length; o += 40) if (rand() < 0.5) dv.setUint16(o + 8, pick([victim.domid, 0x7ff0, 0]), true);
      copies.push(e.call('gnttab.copy', { ops, ...(rand() < 0.5 ? { data: new Uint8Array(Math.floor(rand() * 9000)) } : {}) }).then((r) => ({ r, n: ops.length / 40 })));
    }
    for (const { r, n } of (await Promise.all(copies)) as Array<{ r: { status: Uint8Array }; n: number }>) {
      expect(r.status.length).toBe(2 * n);
      const st = new DataView(r.status.buffer, r.status.byteOffset, r.status.length);
      for (let i = 0; i < n; i++) expect(st.getInt16(2 * i, true)).toBeGreaterThanOrEqual(-13);
    }
    // Targeted attacks on the victim.
    const targeted = [
      e.call('evtchn.close', { port: victimPort }),
      e.call('evtchn.status', { dom: victim.domid, port: victimPort }),
      e.call('evtchn.bind_interdomain', { remote_dom: victim.domid, remote_port: victimPort }),
      e.call('evtchn.reset', { dom: victim.domid }),
      e.call('foreign.write', { domid: victim.domid, gfn: 0, offset: 0, data: new Uint8Array(4) }),
      e.call('gnttab.setup_table', { dom: victim.domid, nr_frames: 4 }).then((r) => (r.status === -8 ? Promise.reject(new XenError('EPERM', 'GNTST_permission_denied')) : r)),
      e.call('memory.populate_physmap', { domid: victim.domid, gfns: [1] }),
      e.call('domctl.destroydomain', { domid: victim.domid }),
      e.call('memory.read', { gfn: 0xffff_ffff }),
    ].map((p) => p.then((r) => r, (x: unknown) => x));
    const results = await Promise.all([...calls, ...targeted]);
    for (const r of await Promise.all(targeted)) {
      expect(r, JSON.stringify(r)).toBeInstanceOf(XenError);
    }
    for (const r of results) {
      // Everything either failed with a Xen errno, or (for the few well-formed ones) got a value.
      if (r instanceof XenError) expect(isXenErrno(r.errno)).toBe(true);
      else if (r instanceof Error) throw r;
    }
    expect(results.filter((r) => r instanceof XenError && r.errno === 'EIO')).toEqual([]);
    // The hypervisor is up, the victim is untouched.
    expect((await dom0.call('xen_version', {})).implementation).toBe('xenbox');
    const after = await dom0.call('sysctl.getdomaininfolist', {});
    expect(after.map((d) => [d.domid, d.name, d.dying])).toEqual(before.map((d) => [d.domid, d.name, d.dying]));
    expect(await v.call('evtchn.status', { dom: 0x7ff0, port: victimPort })).toEqual({ status: 'unbound', vcpu: 0, dom: 0 });
    await e.close();
    await v.close();
    await dom0.call('domctl.destroydomain', { domid: evil.domid });
    await dom0.call('domctl.destroydomain', { domid: victim.domid });
  });
});
