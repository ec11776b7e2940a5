/**
 * The PV guest ABI without vCPUs: a guest's hypercalls decoded from (and
 * answered into) its RAM, shared_info placed in it, grant frames placed in
 * it — checked byte for byte at @xenbox/abi's offsets.
 */
import { describe, expect, it } from 'vitest';
import {
  DOMID_SELF,
  EVTCHNOP,
  EVTCHNSTAT,
  EVTCHN_STRUCT,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST,
  GNTTABOP,
  GNTTAB_STRUCT,
  GTF_permit_access,
  GTF_reading,
  GUEST_RAM_BASE_GFN,
  SHARED_INFO,
  VCPU_INFO,
  VIRQ,
  XEN_ERRNO,
  XEN_HYPERCALL,
  XENMAPSPACE,
  XENMEM,
  XENMEM_STRUCT,
  XenError,
  vcpuInfoOffset,
} from '@xenbox/abi';
import { guestHypercall, type GuestCall } from '../src/arch/riscv/guest-hypercalls.js';
import { GuestMemory } from '../src/arch/riscv/guest-memory.js';
import { GuestTimers, guestSystemTimeNs } from '../src/arch/riscv/guest-timers.js';
import { makeHypervisor } from './hv-harness.js';

const RAM = BigInt(GUEST_RAM_BASE_GFN * 4096);
/** Guest addresses the tests use: an argument struct, a frame list, shared_info, a grant frame, a granted page. */
const ARG = RAM + 0x1000n;
const LIST = RAM + 0x1800n;
const SHINFO_GFN = GUEST_RAM_BASE_GFN + 4;
const GRANT_GFN = GUEST_RAM_BASE_GFN + 5;
const DATA_GFN = GUEST_RAM_BASE_GFN + 6;

function guestWorld() {
  const t = makeHypervisor();
  const g = t.newDomain('guest', 'pvh', { memkb: 64 });
  const d = t.hv.domains.require(g);
  const kicks: number[] = [];
  t.hv.setGuestUpcallHook((_d, vcpu) => kicks.push(vcpu));
  const timers = new GuestTimers();
  const c: GuestCall = { hv: t.hv, d, vcpu: 0, mem: new GuestMemory(d, () => false), timers, console: () => undefined };
  const ram = new DataView(d.memory.ram!);
  const at = (addr: bigint) => Number(addr - RAM);
  /** A hypercall as the vCPU layer makes it: Xen's value, or -errno. */
  const hcall = (op: number, ...args: bigint[]): number => {
    try {
      return guestHypercall(c, op, args);
    } catch (e) {
      if (e instanceof XenError) return -XEN_ERRNO[e.errno];
      throw e;
    }
  };
  const evtchnOp = (cmd: number, fill: (dv: DataView, o: number) => void = () => undefined): number => {
    new Uint8Array(d.memory.ram!, at(ARG), 64).fill(0);
    fill(ram, at(ARG));
    return hcall(XEN_HYPERCALL.event_channel_op, BigInt(cmd), ARG);
  };
  const addToPhysmap = (space: number, idx: number, gfn: number, domid = DOMID_SELF): number => {
    const o = at(ARG);
    ram.setUint16(o + XENMEM_STRUCT.add_to_physmap.domid, domid, true);
    ram.setUint32(o + XENMEM_STRUCT.add_to_physmap.space, space, true);
    ram.setBigUint64(o + XENMEM_STRUCT.add_to_physmap.idx, BigInt(idx), true);
    ram.setBigUint64(o + XENMEM_STRUCT.add_to_physmap.gpfn, BigInt(gfn), true);
    return hcall(XEN_HYPERCALL.memory_op, BigInt(XENMEM.add_to_physmap), ARG);
  };
  const shinfo = (gfn: number) => (gfn - GUEST_RAM_BASE_GFN) * 4096;
  return { t, g, d, c, ram, at, hcall, evtchnOp, addToPhysmap, shinfo, kicks, timers };
}

describe('shared_info layout (RV64)', () => {
  it('matches xen.h with 64-bit xen_ulong_t, an empty arch_vcpu_info and 32 vcpu_info slots', () => {
    expect(VCPU_INFO).toMatchObject({ evtchn_upcall_pending: 0, evtchn_upcall_mask: 1, evtchn_pending_sel: 8, time: 16, size: 48 });
    expect(SHARED_INFO).toMatchObject({ vcpu_info: 0, evtchn_pending: 1536, evtchn_mask: 2048, wc_version: 2560, wc_sec_hi: 2572, size: 2576 });
    expect(vcpuInfoOffset(31)).toBe(31 * 48);
    expect(SHARED_INFO.size).toBeLessThanOrEqual(4096);
  });
});

describe('a guest that placed shared_info', () => {
  it('finds events set pending in its own RAM, with the selector and upcall_pending, and one upcall per edge', () => {
    const w = guestWorld();
    expect(w.addToPhysmap(XENMAPSPACE.shared_info, 0, SHINFO_GFN)).toBe(0);
    const dom = w.t.newDomain('backend');
    const { port } = w.t.call(w.g, 'evtchn.alloc_unbound', { dom: DOMID_SELF, remote_dom: dom });
    const { local_port } = w.t.call(dom, 'evtchn.bind_interdomain', { remote_dom: w.g, remote_port: port });
    w.t.call(dom, 'evtchn.send', { port: local_port });
    w.t.call(dom, 'evtchn.send', { port: local_port });
    const base = w.shinfo(SHINFO_GFN);
    const word = w.ram.getBigUint64(base + SHARED_INFO.evtchn_pending + Math.floor(port / 64) * 8, true);
    expect((word >> BigInt(port % 64)) & 1n).toBe(1n);
    expect(w.ram.getBigUint64(base + vcpuInfoOffset(0) + VCPU_INFO.evtchn_pending_sel, true)).toBe(1n << BigInt(Math.floor(port / 64)));
    expect(w.ram.getUint8(base + vcpuInfoOffset(0) + VCPU_INFO.evtchn_upcall_pending)).toBe(1);
    expect(w.kicks).toEqual([0]);
    // The guest's upcall handler: clear upcall_pending, the selector and the port; the next send raises a new upcall.
    w.ram.setUint8(base + vcpuInfoOffset(0) + VCPU_INFO.evtchn_upcall_pending, 0);
    w.ram.setBigUint64(base + vcpuInfoOffset(0) + VCPU_INFO.evtchn_pending_sel, 0n, true);
    w.ram.setBigUint64(base + SHARED_INFO.evtchn_pending, 0n, true);
    w.t.call(dom, 'evtchn.send', { port: local_port });
    expect(w.kicks).toEqual([0, 0]);
  });

  it('keeps a port the guest masked in its RAM quiet until EVTCHNOP_unmask', () => {
    const w = guestWorld();
    w.addToPhysmap(XENMAPSPACE.shared_info, 0, SHINFO_GFN);
    expect(w.evtchnOp(EVTCHNOP.bind_ipi, (dv, o) => dv.setUint32(o + EVTCHN_STRUCT.bind_ipi.vcpu, 0, true))).toBe(0);
    const port = w.ram.getUint32(w.at(ARG) + EVTCHN_STRUCT.bind_ipi.port, true);
    const base = w.shinfo(SHINFO_GFN);
    w.ram.setBigUint64(base + SHARED_INFO.evtchn_mask, 1n << BigInt(port), true);
    w.evtchnOp(EVTCHNOP.send, (dv, o) => dv.setUint32(o, port, true));
    expect(w.kicks).toEqual([]);
    expect(w.evtchnOp(EVTCHNOP.unmask, (dv, o) => dv.setUint32(o, port, true))).toBe(0);
    expect(w.kicks).toEqual([0]);
    expect(w.ram.getBigUint64(base + SHARED_INFO.evtchn_mask, true)).toBe(0n);
  });

  it('carries over what was pending before it was placed', () => {
    const w = guestWorld();
    const { port } = w.t.call(w.g, 'evtchn.bind_ipi', { vcpu: 0 });
    w.t.call(w.g, 'evtchn.send', { port });
    w.addToPhysmap(XENMAPSPACE.shared_info, 0, SHINFO_GFN);
    const word = w.ram.getBigUint64(w.shinfo(SHINFO_GFN) + SHARED_INFO.evtchn_pending, true);
    expect((word >> BigInt(port)) & 1n).toBe(1n);
  });

  it('refuses a gfn outside its RAM, another domain, idx != 0 and unknown spaces', () => {
    const w = guestWorld();
    expect(w.addToPhysmap(XENMAPSPACE.shared_info, 0, 0x1234)).toBe(-XEN_ERRNO.EINVAL);
    expect(w.addToPhysmap(XENMAPSPACE.shared_info, 1, SHINFO_GFN)).toBe(-XEN_ERRNO.EINVAL);
    expect(w.addToPhysmap(XENMAPSPACE.shared_info, 0, SHINFO_GFN, 0)).toBe(-XEN_ERRNO.EPERM);
    expect(w.addToPhysmap(XENMAPSPACE.gmfn_foreign, 0, SHINFO_GFN)).toBe(-XEN_ERRNO.ENOSYS);
  });
});

describe('event_channel_op from guest memory', () => {
  it('alloc_unbound, bind_virq and status write their OUT fields at event_channel.h offsets', () => {
    const w = guestWorld();
    expect(w.evtchnOp(EVTCHNOP.alloc_unbound, (dv, o) => {
      dv.setUint16(o + EVTCHN_STRUCT.alloc_unbound.dom, DOMID_SELF, true);
      dv.setUint16(o + EVTCHN_STRUCT.alloc_unbound.remote_dom, 0, true);
    })).toBe(0);
    const port = w.ram.getUint32(w.at(ARG) + EVTCHN_STRUCT.alloc_unbound.port, true);
    expect(port).toBeGreaterThan(0);
    expect(w.t.call(w.g, 'evtchn.status', { dom: DOMID_SELF, port })).toEqual({ status: 'unbound', vcpu: 0, dom: 0 });

    expect(w.evtchnOp(EVTCHNOP.bind_virq, (dv, o) => dv.setUint32(o + EVTCHN_STRUCT.bind_virq.virq, VIRQ.TIMER, true))).toBe(0);
    const vport = w.ram.getUint32(w.at(ARG) + EVTCHN_STRUCT.bind_virq.port, true);
    expect(vport).toBe(port + 1);

    const { local_port } = w.t.call(0, 'evtchn.bind_interdomain', { remote_dom: w.g, remote_port: port });
    expect(w.evtchnOp(EVTCHNOP.status, (dv, o) => {
      dv.setUint16(o + EVTCHN_STRUCT.status.dom, DOMID_SELF, true);
      dv.setUint32(o + EVTCHN_STRUCT.status.port, port, true);
    })).toBe(0);
    const o = w.at(ARG);
    expect(w.ram.getUint32(o + EVTCHN_STRUCT.status.status, true)).toBe(EVTCHNSTAT.interdomain);
    expect(w.ram.getUint16(o + EVTCHN_STRUCT.status.u, true)).toBe(0);
    expect(w.ram.getUint32(o + EVTCHN_STRUCT.status.u_port, true)).toBe(local_port);
  });

  it('send reaches a process domain at the other end', async () => {
    const w = guestWorld();
    w.evtchnOp(EVTCHNOP.alloc_unbound, (dv, o) => dv.setUint16(o + EVTCHN_STRUCT.alloc_unbound.dom, DOMID_SELF, true));
    const port = w.ram.getUint32(w.at(ARG) + EVTCHN_STRUCT.alloc_unbound.port, true);
    const { local_port } = w.t.call(0, 'evtchn.bind_interdomain', { remote_dom: w.g, remote_port: port });
    await w.t.flush();
    expect(w.evtchnOp(EVTCHNOP.send, (dv, o) => dv.setUint32(o, port, true))).toBe(0);
    await w.t.flush();
    expect(w.t.eventsFor(0, 'evtchn.pending').map((e) => e.data.ports)).toEqual([[local_port], [local_port]]);
  });

  it('a pointer outside populated RAM is EFAULT, an unknown or FIFO EVTCHNOP is ENOSYS, a bad port EINVAL', () => {
    const w = guestWorld();
    expect(w.hcall(XEN_HYPERCALL.event_channel_op, BigInt(EVTCHNOP.send), 0x1000n)).toBe(-XEN_ERRNO.EFAULT);
    expect(w.hcall(XEN_HYPERCALL.event_channel_op, BigInt(EVTCHNOP.send), RAM + 64n * 1024n - 2n)).toBe(-XEN_ERRNO.EFAULT);
    expect(w.hcall(XEN_HYPERCALL.event_channel_op, BigInt(EVTCHNOP.send), 0xffff_ffff_ffff_fff0n)).toBe(-XEN_ERRNO.EFAULT);
    expect(w.evtchnOp(99)).toBe(-XEN_ERRNO.ENOSYS);
    expect(w.evtchnOp(EVTCHNOP.init_control)).toBe(-XEN_ERRNO.ENOSYS);
    expect(w.evtchnOp(EVTCHNOP.send, (dv, o) => dv.setUint32(o, 5000, true))).toBe(-XEN_ERRNO.EINVAL);
    expect(w.hcall(77)).toBe(-XEN_ERRNO.ENOSYS);
  });

  it('a guest with paging on gets EFAULT (buffers are physical for now)', () => {
    const w = guestWorld();
    const c = { ...w.c, mem: new GuestMemory(w.d, () => true) };
    expect(() => guestHypercall(c, XEN_HYPERCALL.event_channel_op, [BigInt(EVTCHNOP.send), ARG])).toThrow(expect.objectContaining({ errno: 'EFAULT' }));
  });
});

describe('grant_table_op and XENMAPSPACE_grant_table', () => {
  it('query_size and setup_table answer at grant_table.h offsets', () => {
    const w = guestWorld();
    const o = w.at(ARG);
    w.ram.setUint16(o + GNTTAB_STRUCT.query_size.dom, DOMID_SELF, true);
    expect(w.hcall(XEN_HYPERCALL.grant_table_op, BigInt(GNTTABOP.query_size), ARG, 1n)).toBe(0);
    expect(w.ram.getUint32(o + GNTTAB_STRUCT.query_size.max_nr_frames, true)).toBe(64);
    expect(w.ram.getInt16(o + GNTTAB_STRUCT.query_size.status, true)).toBe(GNTST.okay);
    expect(w.hcall(XEN_HYPERCALL.grant_table_op, BigInt(GNTTABOP.query_size), ARG, 2n)).toBe(-XEN_ERRNO.EINVAL);

    w.addToPhysmap(XENMAPSPACE.grant_table, 0, GRANT_GFN);
    w.ram.setUint16(o + GNTTAB_STRUCT.setup_table.dom, DOMID_SELF, true);
    w.ram.setUint32(o + GNTTAB_STRUCT.setup_table.nr_frames, 2, true);
    w.ram.setBigUint64(o + GNTTAB_STRUCT.setup_table.frame_list, LIST, true);
    expect(w.hcall(XEN_HYPERCALL.grant_table_op, BigInt(GNTTABOP.setup_table), ARG, 1n)).toBe(0);
    expect(w.ram.getInt16(o + GNTTAB_STRUCT.setup_table.status, true)).toBe(GNTST.okay);
    expect(w.ram.getBigUint64(w.at(LIST), true)).toBe(BigInt(GRANT_GFN));
    expect(w.hcall(XEN_HYPERCALL.grant_table_op, BigInt(GNTTABOP.map_grant_ref), ARG, 1n)).toBe(-XEN_ERRNO.ENOSYS);
  });

  it('a grant entry the guest writes in its placed frame lets dom0 map its page, and the pin shows in the guest RAM', () => {
    const w = guestWorld();
    expect(w.addToPhysmap(XENMAPSPACE.grant_table, 0, GRANT_GFN)).toBe(0);
    const frame = w.shinfo(GRANT_GFN);
    const ref = 8;
    new Uint8Array(w.d.memory.ram!, w.shinfo(DATA_GFN), 5).set(Buffer.from('hello'));
    w.ram.setUint16(frame + ref * 8 + 2, 0, true); // domid: dom0
    w.ram.setUint32(frame + ref * 8 + 4, DATA_GFN, true);
    w.ram.setUint16(frame + ref * 8, GTF_permit_access, true);
    const [r] = w.t.call(0, 'gnttab.map_grant_ref', { ops: [{ dom: w.g, ref, flags: GNTMAP_host_map | GNTMAP_readonly }] });
    expect(r.status).toBe(GNTST.okay);
    expect(Buffer.from(r.data.subarray(0, 5)).toString()).toBe('hello');
    expect(w.ram.getUint16(frame + ref * 8, true) & GTF_reading).toBe(GTF_reading);
    w.t.call(0, 'gnttab.unmap_grant_ref', { ops: [{ handle: r.handle }] });
    expect(w.ram.getUint16(frame + ref * 8, true)).toBe(GTF_permit_access);
  });

  it('refuses grant status frames (v2) and frames past max_grant_frames', () => {
    const w = guestWorld();
    expect(w.addToPhysmap(XENMAPSPACE.grant_table, 0x8000_0000, GRANT_GFN)).toBe(-XEN_ERRNO.EINVAL);
    expect(w.addToPhysmap(XENMAPSPACE.grant_table, 64, GRANT_GFN)).toBe(-XEN_ERRNO.EINVAL);
  });
});

describe('set_timer_op', () => {
  it('a guest gets VIRQ_TIMER on its vCPU after set_timer_op; 0 cancels', async () => {
    const w = guestWorld();
    w.evtchnOp(EVTCHNOP.bind_virq, (dv, o) => dv.setUint32(o + EVTCHN_STRUCT.bind_virq.virq, VIRQ.TIMER, true));
    const port = w.ram.getUint32(w.at(ARG) + EVTCHN_STRUCT.bind_virq.port, true);
    expect(w.hcall(XEN_HYPERCALL.set_timer_op, guestSystemTimeNs() + 5_000_000n)).toBe(0);
    await new Promise((r) => setTimeout(r, 30));
    expect(w.d.evtchn.isPending(port)).toBe(true);
    expect(w.kicks).toEqual([0]);
    w.d.evtchn.takePending();
    w.hcall(XEN_HYPERCALL.set_timer_op, guestSystemTimeNs() + 5_000_000n);
    w.hcall(XEN_HYPERCALL.set_timer_op, 0n);
    await new Promise((r) => setTimeout(r, 30));
    expect(w.d.evtchn.isPending(port)).toBe(false);
  });
});
