/**
 * The hypervisor's ZeroMQ endpoint against real and hostile peers:
 * authentication, privilege, malformed frames, pipelining.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import { encode } from 'msgpackr';
import { BULK_REF_EXT, XenError, decodeParts, ipcEndpoint, runDirLayout, type ErrReplyMsg, type Msg } from '@xenbox/abi';
import { HypervisorConnection, RpcClient } from '@xenbox/libxen';
import { startHypervisor, type LoneHypervisor } from './helpers/hypervisor.js';

let hv: LoneHypervisor;
let dom0: HypervisorConnection;
const endpoint = () => ipcEndpoint(runDirLayout(hv.runDir).hypervisorSocket);

/** A raw DEALER for sending bytes the client library would never send. */
async function rawPeer(receiveTimeout = 3000) {
  const sock = new Dealer({ linger: 0, receiveTimeout });
  sock.connect(endpoint());
  return {
    async exchange(...parts: (Buffer | Uint8Array)[]): Promise<Msg[]> {
      await sock.send(parts.length === 1 ? parts[0]! : parts);
      return decodeParts(await sock.receive());
    },
    close: () => sock.close(),
  };
}

async function expectXenError(p: Promise<unknown>, errno: string, text?: RegExp): Promise<void> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(XenError);
  expect((e as XenError).errno).toBe(errno);
  if (text) expect((e as XenError).message).toMatch(text);
}

beforeAll(async () => {
  hv = await startHypervisor('hvt');
  dom0 = await HypervisorConnection.connect({ runDir: hv.runDir, domid: 0, token: hv.dom0Token });
});
afterAll(async () => {
  await dom0?.close();
  await hv?.stop();
});

describe('authentication', () => {
  it('accepts dom0 with the token the hypervisor minted', () => {
    expect(dom0.self).toEqual({ domid: 0, name: 'Domain-0', kind: 'dom0' });
  });

  it('refuses a wrong token with EACCES', async () => {
    await expectXenError(HypervisorConnection.connect({ runDir: hv.runDir, domid: 0, token: 'not-the-token' }), 'EACCES');
  });

  it("refuses another domain's token", async () => {
    const d = await dom0.call('domctl.createdomain', { name: 'victim', kind: 'service' });
    await expectXenError(HypervisorConnection.connect({ runDir: hv.runDir, domid: 0, token: d.token }), 'EACCES');
    await dom0.call('domctl.destroydomain', { domid: d.domid });
  });

  it('refuses a connection whose first call is not hello, and serves it nothing afterwards', async () => {
    const rpc = new RpcClient(endpoint(), { timeoutMs: 3000 });
    rpc.connect();
    await expectXenError(rpc.call('sysctl.getdomaininfolist', {}), 'EACCES', /first call must be hello/);
    // Even the right credentials no longer help on this connection.
    await expectXenError(rpc.call('hello', { domid: 0, token: hv.dom0Token }), 'EACCES');
    await rpc.close();
  });

  it('refuses a hello with a missing token', async () => {
    const rpc = new RpcClient(endpoint(), { timeoutMs: 3000 });
    rpc.connect();
    await expectXenError(rpc.call('hello', { domid: 0 }), 'EACCES', /token must be a string/);
    await rpc.close();
  });
});

describe('privilege', () => {
  it('an unprivileged domain gets EPERM for domctl and nothing changes', async () => {
    const d = await dom0.call('domctl.createdomain', { name: 'unpriv', kind: 'service' });
    const u = await HypervisorConnection.connect({ runDir: hv.runDir, domid: d.domid, token: d.token });
    const before = await dom0.call('sysctl.getdomaininfolist', {});
    await expectXenError(u.call('domctl.createdomain', { name: 'evil', kind: 'service' }), 'EPERM');
    await expectXenError(u.call('domctl.destroydomain', { domid: 0 }), 'EPERM');
    expect(await dom0.call('sysctl.getdomaininfolist', {})).toEqual(before);
    await u.close();
    await dom0.call('domctl.destroydomain', { domid: d.domid });
  });

  it('a destroyed domain is told, and its connection is served nothing more', async () => {
    const d = await dom0.call('domctl.createdomain', { name: 'doomed', kind: 'service' });
    const u = await HypervisorConnection.connect({ runDir: hv.runDir, domid: d.domid, token: d.token });
    const told = new Promise((r) => u.on('domain.destroyed', r));
    await dom0.call('domctl.destroydomain', { domid: d.domid });
    expect(await told).toEqual({ domid: d.domid, reason: 'destroyed by the toolstack' });
    await expectXenError(u.call('xen_version', {}), 'EACCES');
    await u.close();
  });

  it('gives each new domain a fresh domid', async () => {
    const a = await dom0.call('domctl.createdomain', { name: 'a1', kind: 'service' });
    await dom0.call('domctl.destroydomain', { domid: a.domid });
    const b = await dom0.call('domctl.createdomain', { name: 'a1', kind: 'service' });
    expect(b.domid).toBeGreaterThan(a.domid);
    await dom0.call('domctl.destroydomain', { domid: b.domid });
  });

  it('answers unknown hypercalls with ENOSYS and bad arguments with EINVAL', async () => {
    await expectXenError(dom0.call('no_such_op' as 'xen_version', {}), 'ENOSYS');
    await expectXenError(dom0.call('domctl.createdomain', { name: 'x/y', kind: 'service' }), 'EINVAL', /not a valid domain name/);
    await expectXenError(dom0.call('domctl.createdomain', { name: 'ok', kind: 'toaster' as 'service' }), 'EINVAL', /kind must be one of/);
    await expectXenError(dom0.call('domctl.destroydomain', { domid: 'one' as unknown as number }), 'EINVAL');
    await expectXenError(dom0.call('domctl.getdomaininfo', { domid: 4000 }), 'ESRCH');
  });
});

describe('malformed frames', () => {
  it('get an error reply naming the problem, and the hypervisor keeps serving others', async () => {
    const peer = await rawPeer();
    const cases: Array<[string, Buffer, RegExp]> = [
      ['garbage bytes', Buffer.from([0xc1, 0xff, 0x00, 0x13]), /not msgpack/],
      ['a bare number', encode(42), /must be a map/],
      ['op of the wrong type', encode({ id: 1, op: 7, args: {} }), /op must be a non-empty string/],
      ['a negative id', encode({ id: -3, op: 'hello', args: {} }), /call id/],
      ['a string claiming 4 GiB', Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]), /not msgpack/],
      ['an array claiming 4 G entries', Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), /not msgpack|exceeds/],
      ['an empty batch', encode([]), /empty batch/],
      ['a reply sent as a call', encode({ id: 1, ok: 1 }), /only calls/],
    ];
    for (const [what, bytes, why] of cases) {
      const [reply] = await peer.exchange(bytes);
      expect(reply, what).toMatchObject({ id: null, err: { errno: 'EINVAL' } });
      expect((reply as ErrReplyMsg).err.message, what).toMatch(why);
    }
    peer.close();
    expect((await dom0.call('xen_version', {})).major).toBe(4);
  });

  it('refuse malformed multipart messages (bulk parts) with EINVAL, and the hypervisor keeps serving', async () => {
    const peer = await rawPeer();
    const hello = encode({ id: 1, op: 'hello', args: {} });
    // {id: 1, op: 'hello', args: <bulk reference (0, 4096)>}, as a hostile peer would write it.
    const ref = Buffer.alloc(8);
    ref.writeUInt32BE(4096, 4);
    const str = (t: string) => Buffer.concat([Buffer.from([0xa0 | t.length]), Buffer.from(t)]);
    const refCall = Buffer.concat([Buffer.from([0x83]), str('id'), Buffer.from([0x01]), str('op'), str('hello'), str('args'), Buffer.from([0xd7, BULK_REF_EXT]), ref]);
    const page = Buffer.alloc(4096, 0x41);
    const cases: Array<[string, Buffer[], RegExp]> = [
      ['extra parts', [hello, page, Buffer.from('extra')], /3 parts, at most 2/],
      ['a bulk part nobody refers to', [hello, Buffer.from('extra')], /5 bytes no message refers to/],
      ['a missing bulk part', [refCall], /without a bulk part/],
      ['a bulk part shorter than its reference', [refCall, page.subarray(0, 100)], /past the end/],
      ['an empty bulk part', [hello, Buffer.alloc(0)], /empty bulk part/],
    ];
    for (const [what, parts, why] of cases) {
      const [reply] = await peer.exchange(...parts);
      expect(reply, what).toMatchObject({ id: null, err: { errno: 'EINVAL' } });
      expect((reply as ErrReplyMsg).err.message, what).toMatch(why);
    }
    // Well-formed bulk is decoded and the call reaches the hypervisor: hello with bytes for args
    // is refused by hello (a reply tied to call 1), not by the framing (id nil).
    const [r] = await peer.exchange(refCall, page);
    expect(r).toMatchObject({ id: 1, err: { errno: 'EACCES' } });
    expect((r as ErrReplyMsg).err.message).not.toMatch(/malformed frame/);
    peer.close();
    expect((await dom0.call('xen_version', {})).major).toBe(4);
  });

  it('a frame over the size limit drops only that peer', async () => {
    const peer = await rawPeer(500);
    await peer.exchange(encode(1)).catch(() => []); // connect
    const huge = Buffer.alloc(17 * 1024 * 1024, 0x61);
    await expect(peer.exchange(huge)).rejects.toThrow();
    peer.close();
    expect((await dom0.call('xen_version', {})).implementation).toBe('xenbox');
  });

  it('a bulk part over the size limit drops only that peer', async () => {
    const peer = await rawPeer(500);
    await peer.exchange(encode(1)).catch(() => []); // connect
    const huge = Buffer.alloc(17 * 1024 * 1024, 0x61);
    await expect(peer.exchange(encode({ id: 1, op: 'xen_version', args: {} }), huge)).rejects.toThrow();
    peer.close();
    expect((await dom0.call('xen_version', {})).implementation).toBe('xenbox');
  });
});

describe('pipelining', () => {
  it('keeps thousands of calls in flight on one connection and matches every reply to its call', async () => {
    const n = 5000;
    const replies = await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? dom0.call('xen_version', {}) : dom0.call('domctl.getdomaininfo', { domid: 0 }))));
    replies.forEach((r, i) => {
      if (i % 2) expect(r).toMatchObject({ major: 4 });
      else expect(r).toMatchObject({ domid: 0, name: 'Domain-0' });
    });
    expect(dom0.inFlight).toBe(0);
  });

  it('carries posted calls in order without replies; a failing one is logged, not answered', async () => {
    dom0.post('console_io.write', { text: 'posted hello' });
    dom0.post('domctl.getdomaininfo', { domid: 31000 }); // fails: no reply comes back for it
    const { text } = await dom0.call('console_io.read', {});
    expect(text).toContain('(d0) posted hello');
    expect(dom0.inFlight).toBe(0);
  });

  it('times a call out with ETIMEDOUT when nobody answers', async () => {
    const rpc = new RpcClient(ipcEndpoint(`${hv.runDir}/nobody-here.sock`), { timeoutMs: 200 });
    rpc.connect();
    await expectXenError(rpc.call('xen_version', {}), 'ETIMEDOUT');
    await rpc.close();
  });
});
