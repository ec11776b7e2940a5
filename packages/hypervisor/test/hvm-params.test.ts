/**
 * HVM params (HYPERVISOR_hvm_op get/set_param) and the xenstore domain
 * (createdomain flag xs_domain): how a guest finds its rings, and how
 * xenstored hears of shutdowns.
 */
import { describe, expect, it } from 'vitest';
import { DOMID_SELF, GUEST_RAM_BASE_GFN, HVMOP, HVM_PARAM, HVM_STRUCT, VIRQ, XEN_ERRNO, XEN_HYPERCALL, XenError } from '@xenbox/abi';
import { guestHypercall, type GuestCall } from '../src/arch/riscv/guest-hypercalls.js';
import { GuestMemory } from '../src/arch/riscv/guest-memory.js';
import { GuestTimers } from '../src/arch/riscv/guest-timers.js';
import { makeHypervisor } from './hv-harness.js';

const RAM = BigInt(GUEST_RAM_BASE_GFN * 4096);
const ARG = RAM + 0x1000n;
const L = HVM_STRUCT.param;

function guest() {
  const t = makeHypervisor();
  const g = t.newDomain('guest', 'pvh', { memkb: 64 });
  const d = t.hv.domains.require(g);
  const c: GuestCall = { hv: t.hv, d, vcpu: 0, mem: new GuestMemory(d, () => false), timers: new GuestTimers(), console: () => undefined };
  const ram = new DataView(d.memory.ram!);
  const o = Number(ARG - RAM);
  /** HYPERVISOR_hvm_op(op, &xen_hvm_param): Xen's value or -errno, and the value field after. */
  const hvmOp = (op: number, index: number, domid = DOMID_SELF, value = 0n): { rc: number; value: bigint } => {
    ram.setUint16(o + L.domid, domid, true);
    ram.setUint32(o + L.index, index, true);
    ram.setBigUint64(o + L.value, value, true);
    let rc: number;
    try {
      rc = guestHypercall(c, XEN_HYPERCALL.hvm_op, [BigInt(op), ARG]);
    } catch (e) {
      if (!(e instanceof XenError)) throw e;
      rc = -XEN_ERRNO[e.errno];
    }
    return { rc, value: ram.getBigUint64(o + L.value, true) };
  };
  return { t, g, hvmOp };
}

describe('HVMOP_get_param / HVMOP_set_param', () => {
  it('lets the toolstack set a guest\'s params and the guest read them at xen_hvm_param.value (offset 8); an unset param reads 0', () => {
    const { t, g, hvmOp } = guest();
    t.call(0, 'hvm.set_param', { domid: g, index: HVM_PARAM.STORE_PFN, value: 0x80fff });
    t.call(0, 'hvm.set_param', { domid: g, index: HVM_PARAM.CONSOLE_EVTCHN, value: 1 });
    expect(hvmOp(HVMOP.get_param, HVM_PARAM.STORE_PFN)).toEqual({ rc: 0, value: 0x80fffn });
    expect(hvmOp(HVMOP.get_param, HVM_PARAM.CONSOLE_EVTCHN, g)).toEqual({ rc: 0, value: 1n });
    expect(hvmOp(HVMOP.get_param, HVM_PARAM.STORE_EVTCHN, DOMID_SELF, 77n)).toEqual({ rc: 0, value: 0n });
    expect(t.call(0, 'hvm.get_param', { domid: g, index: HVM_PARAM.STORE_PFN })).toEqual({ value: 0x80fff });
  });

  it('refuses a guest HVMOP_set_param with -EPERM and changes nothing', () => {
    const { t, g, hvmOp } = guest();
    t.call(0, 'hvm.set_param', { domid: g, index: HVM_PARAM.STORE_PFN, value: 5 });
    expect(hvmOp(HVMOP.set_param, HVM_PARAM.STORE_PFN, DOMID_SELF, 0x1234n).rc).toBe(-XEN_ERRNO.EPERM);
    expect(hvmOp(HVMOP.get_param, HVM_PARAM.STORE_PFN).value).toBe(5n);
  });

  it('gives -EINVAL past HVM_NR_PARAMS, -EPERM for another domain\'s params, -ENOSYS for other HVMOPs', () => {
    const { t, hvmOp } = guest();
    const other = t.newDomain('other', 'pvh', { memkb: 64 });
    expect(hvmOp(HVMOP.get_param, 39).rc).toBe(-XEN_ERRNO.EINVAL);
    expect(hvmOp(HVMOP.get_param, HVM_PARAM.STORE_PFN, other).rc).toBe(-XEN_ERRNO.EPERM);
    expect(hvmOp(7, HVM_PARAM.STORE_PFN).rc).toBe(-XEN_ERRNO.ENOSYS);
  });
});

describe('the xenstore domain (flag xs_domain)', () => {
  it('may list domains and read their info; another service domain may not', () => {
    const t = makeHypervisor();
    const xs = t.newDomain('xenstored', 'service', { flags: ['xs_domain'] });
    const nb = t.newDomain('netback');
    expect(t.call(xs, 'sysctl.getdomaininfolist').map((d: { name: string }) => d.name)).toContain('netback');
    expect(t.call(xs, 'domctl.getdomaininfo', { domid: nb })).toMatchObject({ name: 'netback' });
    expect(t.errnoOf(() => t.call(nb, 'sysctl.getdomaininfolist'))).toBe('EPERM');
    expect(t.errnoOf(() => t.call(xs, 'domctl.destroydomain', { domid: nb }))).toBe('EPERM');
  });

  it('gets VIRQ_DOM_EXC instead of dom0 while it lives (the global VIRQ handler xenstored is given in Xen), dom0 again after', async () => {
    const t = makeHypervisor();
    const xs = t.newDomain('xenstored', 'service', { flags: ['xs_domain'] });
    const { port } = t.call(xs, 'evtchn.bind_virq', { virq: VIRQ.DOM_EXC, vcpu: 0 });
    const d0 = t.call(0, 'evtchn.bind_virq', { virq: VIRQ.DOM_EXC, vcpu: 0 }).port;
    const a = t.newDomain('a');
    t.call(a, 'sched.shutdown', { reason: 'poweroff' });
    await t.flush();
    expect(t.eventsFor(xs, 'evtchn.pending').map((e) => e.data.ports)).toEqual([[port]]);
    expect(t.eventsFor(0, 'evtchn.pending')).toEqual([]);
    t.call(0, 'domctl.destroydomain', { domid: xs });
    t.call(0, 'domctl.destroydomain', { domid: a });
    await t.flush();
    expect(t.eventsFor(0, 'evtchn.pending').flatMap((e) => e.data.ports)).toContain(d0);
  });
});
