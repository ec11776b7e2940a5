/**
 * Xen hypercalls of RISC-V guests, decoded from the register ABI of
 * @xenbox/abi riscv-sbi.ts (a6 = __HYPERVISOR_* number, a0..a5 = arguments,
 * result in a1, -errno on failure) and the argument structs they point to
 * (@xenbox/abi guest-structs.ts).  One function per hypercall family; each
 * copies its struct in once, calls the same hypercall table process domains
 * use (`hv.hypercall`, so every privilege and argument check is shared), and
 * copies the OUT fields back, as Xen's copy_from_guest / copy_to_guest do.
 */
import {
  DOMID_SELF,
  EVTCHNOP,
  EVTCHNSTAT,
  EVTCHN_STRUCT,
  GNTST,
  GNTTAB_STRUCT,
  GNTTABOP,
  HVMOP,
  HVM_STRUCT,
  SCHEDOP,
  SHUTDOWN_REASONS,
  VIRQ,
  XENMEM,
  XENMEM_STRUCT,
  XEN_HYPERCALL,
  XEN_VERSION,
  XenError,
  type DomId,
  type EvtchnStatusReply,
  type GnttabQuerySizeReply,
  type GnttabSetupTableReply,
  type ShutdownReason,
} from '@xenbox/abi';
import type { Hypervisor } from '../../hypervisor.js';
import type { Domain } from '../../common/domain.js';
import { addToPhysmap } from '../../common/physmap.js';
import type { GuestMemory } from './guest-memory.js';
import type { GuestTimers } from './guest-timers.js';

/** What a guest hypercall runs with. */
export interface GuestCall {
  hv: Hypervisor;
  d: Domain;
  vcpu: number;
  mem: GuestMemory;
  timers: GuestTimers;
  /** The epoch of the guest's `time` CSR (its CLINT's, ms): set_timer_op deadlines are on that clock. */
  clockEpochMs?: number;
  /** Bytes the guest wrote with console_io. */
  console(bytes: Uint8Array): void;
}

/** CONSOLEIO_write (xen.h). */
const CONSOLEIO_WRITE = 0;
/** XENVER_version (version.h). */
const XENVER_VERSION = 0;
/** Longest console_io write taken at once (Xen caps guest console writes too). */
const CONSOLE_IO_MAX = 16 * 1024;
/** Most extents one guest memory_op may name (xenbox bounds what Xen would preempt). */
const RESERVATION_MAX = 1024;

/** Dispatch by a6; an unknown number is ENOSYS, as Xen's hypercall table gives. */
export function guestHypercall(c: GuestCall, op: number, args: bigint[]): number {
  const [a0 = 0n, a1 = 0n, a2 = 0n] = args;
  switch (op) {
    case XEN_HYPERCALL.xen_version:
      return xenVersion(a0);
    case XEN_HYPERCALL.console_io:
      return consoleIo(c, Number(a0 & 0xffff_ffffn), a1, a2);
    case XEN_HYPERCALL.sched_op:
      return schedOp(c, Number(a0 & 0xffff_ffffn), a1);
    case XEN_HYPERCALL.event_channel_op:
      return eventChannelOp(c, Number(a0 & 0xffff_ffffn), a1);
    case XEN_HYPERCALL.grant_table_op:
      return grantTableOp(c, Number(a0 & 0xffff_ffffn), a1, a2);
    case XEN_HYPERCALL.memory_op:
      return memoryOp(c, Number(a0 & 0xffff_ffffn), a1);
    case XEN_HYPERCALL.set_timer_op:
      return setTimerOp(c, a0);
    case XEN_HYPERCALL.hvm_op:
      return hvmOp(c, Number(a0 & 0xffff_ffffn), a1);
    default:
      throw new XenError('ENOSYS', `hypercall ${op} is not available to guests yet`);
  }
}

/** The caller as the hypercall table sees it. */
function call<T>(c: GuestCall, op: string, args: unknown): T {
  return c.hv.hypercall(c.d.domid, op, args) as T;
}

// ---------------------------------------------------------------- xen_version, console_io, sched_op

export function xenVersion(cmd: bigint): number {
  if (cmd !== BigInt(XENVER_VERSION)) throw new XenError('ENOSYS', `xen_version sub-op ${cmd}`);
  return (XEN_VERSION.major << 16) | XEN_VERSION.minor;
}

/** HYPERVISOR_console_io(CONSOLEIO_write, count, buffer). */
export function consoleIo(c: GuestCall, cmd: number, count: bigint, buf: bigint): number {
  if (cmd !== CONSOLEIO_WRITE) throw new XenError('ENOSYS', `console_io sub-op ${cmd}`);
  if (count > BigInt(CONSOLE_IO_MAX)) throw new XenError('E2BIG', `console_io write of ${count} bytes`);
  c.console(c.mem.readBytes(buf, Number(count)));
  return 0;
}

/** SCHEDOP_shutdown (sched.h struct sched_shutdown { unsigned int reason; }); yield/block are the scheduler's. */
export function schedOp(c: GuestCall, cmd: number, arg: bigint): number {
  if (cmd !== SCHEDOP.shutdown) throw new XenError('ENOSYS', `sched_op ${cmd}`);
  const code = c.mem.read(arg, 4).getUint32(0, true);
  const reason: ShutdownReason | undefined = SHUTDOWN_REASONS[code];
  if (!reason) throw new XenError('EINVAL', `SCHEDOP_shutdown reason ${code}`);
  c.hv.shutdownDomain(c.d, reason);
  return 0;
}

// ---------------------------------------------------------------- event_channel_op

/** HYPERVISOR_event_channel_op(cmd, arg) with event_channel.h's structs. */
export function eventChannelOp(c: GuestCall, cmd: number, ptr: bigint): number {
  const L = EVTCHN_STRUCT;
  switch (cmd) {
    case EVTCHNOP.alloc_unbound: {
      const a = c.mem.read(ptr, L.alloc_unbound.size);
      const { port } = call<{ port: number }>(c, 'evtchn.alloc_unbound', { dom: a.getUint16(L.alloc_unbound.dom, true), remote_dom: a.getUint16(L.alloc_unbound.remote_dom, true) });
      c.mem.writeU32(ptr + BigInt(L.alloc_unbound.port), port);
      return 0;
    }
    case EVTCHNOP.bind_interdomain: {
      const a = c.mem.read(ptr, L.bind_interdomain.size);
      const args = { remote_dom: a.getUint16(L.bind_interdomain.remote_dom, true), remote_port: a.getUint32(L.bind_interdomain.remote_port, true) };
      const { local_port } = call<{ local_port: number }>(c, 'evtchn.bind_interdomain', args);
      c.mem.writeU32(ptr + BigInt(L.bind_interdomain.local_port), local_port);
      return 0;
    }
    case EVTCHNOP.bind_virq: {
      const a = c.mem.read(ptr, L.bind_virq.size);
      const { port } = call<{ port: number }>(c, 'evtchn.bind_virq', { virq: a.getUint32(L.bind_virq.virq, true), vcpu: a.getUint32(L.bind_virq.vcpu, true) });
      c.mem.writeU32(ptr + BigInt(L.bind_virq.port), port);
      return 0;
    }
    case EVTCHNOP.bind_ipi: {
      const a = c.mem.read(ptr, L.bind_ipi.size);
      const { port } = call<{ port: number }>(c, 'evtchn.bind_ipi', { vcpu: a.getUint32(L.bind_ipi.vcpu, true) });
      c.mem.writeU32(ptr + BigInt(L.bind_ipi.port), port);
      return 0;
    }
    case EVTCHNOP.send:
    case EVTCHNOP.close:
    case EVTCHNOP.unmask: {
      const port = c.mem.read(ptr, L.port_only.size).getUint32(L.port_only.port, true);
      const op = cmd === EVTCHNOP.send ? 'evtchn.send' : cmd === EVTCHNOP.close ? 'evtchn.close' : 'evtchn.unmask';
      call(c, op, { port });
      return 0;
    }
    case EVTCHNOP.status: {
      const a = c.mem.read(ptr, L.status.size);
      const reply = call<EvtchnStatusReply>(c, 'evtchn.status', { dom: a.getUint16(L.status.dom, true), port: a.getUint32(L.status.port, true) });
      c.mem.write(ptr + BigInt(L.status.status), encodeStatus(reply));
      return 0;
    }
    case EVTCHNOP.reset: {
      // struct evtchn_reset { domid_t dom; }
      call(c, 'evtchn.reset', { dom: c.mem.read(ptr, 2).getUint16(0, true) });
      return 0;
    }
    default:
      // bind_pirq, bind_vcpu and the FIFO ABI (init_control, expand_array, set_priority):
      // ENOSYS, which is how a guest learns to stay on the 2-level ABI.
      throw new XenError('ENOSYS', `EVTCHNOP ${cmd} is not available to guests`);
  }
}

/** struct evtchn_status from `status` on: status, vcpu, then the union. */
export function encodeStatus(r: EvtchnStatusReply): Uint8Array {
  const L = EVTCHN_STRUCT.status;
  const out = new Uint8Array(L.size - L.status);
  const dv = new DataView(out.buffer);
  const at = (field: number) => field - L.status;
  dv.setUint32(at(L.status), EVTCHNSTAT[r.status], true);
  dv.setUint32(at(L.vcpu), r.vcpu, true);
  if (r.status === 'unbound' || r.status === 'interdomain') dv.setUint16(at(L.u), r.dom ?? 0, true);
  if (r.status === 'interdomain') dv.setUint32(at(L.u_port), r.port ?? 0, true);
  if (r.status === 'virq') dv.setUint32(at(L.u), r.virq ?? 0, true);
  return out;
}

// ---------------------------------------------------------------- grant_table_op

/** HYPERVISOR_grant_table_op(cmd, uop, count): setup_table and query_size (count must be 1, as in Xen). */
export function grantTableOp(c: GuestCall, cmd: number, ptr: bigint, count: bigint): number {
  const L = GNTTAB_STRUCT;
  switch (cmd) {
    case GNTTABOP.setup_table: {
      if (count !== 1n) throw new XenError('EINVAL', `GNTTABOP_setup_table: count ${count} (must be 1)`);
      const a = c.mem.read(ptr, L.setup_table.size);
      const frameList = a.getBigUint64(L.setup_table.frame_list, true);
      const r = call<GnttabSetupTableReply>(c, 'gnttab.setup_table', { dom: a.getUint16(L.setup_table.dom, true), nr_frames: a.getUint32(L.setup_table.nr_frames, true) });
      let status: number = r.status;
      try {
        r.frame_list.forEach((gfn, i) => c.mem.writeU64(frameList + BigInt(i * 8), gfn));
      } catch (e) {
        if (!(e instanceof XenError)) throw e;
        status = GNTST.bad_virt_addr; // gnttab_setup_table(): a frame_list it cannot write
      }
      c.mem.writeI16(ptr + BigInt(L.setup_table.status), status);
      return 0;
    }
    case GNTTABOP.query_size: {
      if (count !== 1n) throw new XenError('EINVAL', `GNTTABOP_query_size: count ${count} (must be 1)`);
      const a = c.mem.read(ptr, L.query_size.size);
      const r = call<GnttabQuerySizeReply>(c, 'gnttab.query_size', { dom: a.getUint16(L.query_size.dom, true) });
      c.mem.writeU32(ptr + BigInt(L.query_size.nr_frames), r.nr_frames);
      c.mem.writeU32(ptr + BigInt(L.query_size.max_nr_frames), r.max_nr_frames);
      c.mem.writeI16(ptr + BigInt(L.query_size.status), r.status);
      return 0;
    }
    default:
      throw new XenError('ENOSYS', `GNTTABOP ${cmd} is not available to guests yet`);
  }
}

// ---------------------------------------------------------------- memory_op

/** HYPERVISOR_memory_op(cmd, arg): add_to_physmap, reservations. */
export function memoryOp(c: GuestCall, cmd: number, ptr: bigint): number {
  switch (cmd) {
    case XENMEM.add_to_physmap: {
      const L = XENMEM_STRUCT.add_to_physmap;
      const a = c.mem.read(ptr, L.size);
      requireSelf(c.d, a.getUint16(L.domid, true), 'XENMEM_add_to_physmap');
      const idx = a.getBigUint64(L.idx, true);
      const gpfn = a.getBigUint64(L.gpfn, true);
      if (idx > 0xffff_ffffn || gpfn > 0xffff_ffffn) throw new XenError('EINVAL', `XENMEM_add_to_physmap: idx ${idx} / gpfn 0x${gpfn.toString(16)} out of range`);
      addToPhysmap(c.d, a.getUint32(L.space, true), Number(idx), Number(gpfn));
      return 0;
    }
    case XENMEM.populate_physmap:
    case XENMEM.decrease_reservation:
      return reservation(c, cmd, ptr);
    case XENMEM.current_reservation:
    case XENMEM.maximum_reservation: {
      requireSelf(c.d, c.mem.read(ptr, 2).getUint16(0, true), 'XENMEM reservation query');
      const op = cmd === XENMEM.current_reservation ? 'memory.current_reservation' : 'memory.maximum_reservation';
      return call<number>(c, op, { domid: DOMID_SELF });
    }
    default:
      throw new XenError('ENOSYS', `XENMEM ${cmd} is not available to guests yet`);
  }
}

/** A guest may only name itself (XSM_TARGET for an unprivileged caller). */
function requireSelf(d: Domain, domid: DomId, op: string): void {
  if (domid !== DOMID_SELF && domid !== d.domid) throw new XenError('EPERM', `${op}: d${d.domid} may not act on d${domid}`);
}

/** populate_physmap / decrease_reservation over struct xen_memory_reservation; returns extents done. */
function reservation(c: GuestCall, cmd: number, ptr: bigint): number {
  const L = XENMEM_STRUCT.reservation;
  const a = c.mem.read(ptr, L.size);
  requireSelf(c.d, a.getUint16(L.domid, true), 'XENMEM reservation');
  const nr = a.getBigUint64(L.nr_extents, true);
  if (a.getUint32(L.extent_order, true) !== 0) throw new XenError('EINVAL', 'XENMEM reservation: only extent_order 0');
  if (nr > BigInt(RESERVATION_MAX)) throw new XenError('E2BIG', `XENMEM reservation: ${nr} extents (at most ${RESERVATION_MAX})`);
  const list = c.mem.read(a.getBigUint64(L.extent_start, true), Number(nr) * 8);
  const gfns = Array.from({ length: Number(nr) }, (_, i) => Number(list.getBigUint64(i * 8, true) & 0xffff_ffffn));
  const op = cmd === XENMEM.populate_physmap ? 'memory.populate_physmap' : 'memory.decrease_reservation';
  return call<{ done: number }>(c, op, { domid: DOMID_SELF, gfns }).done;
}

// ---------------------------------------------------------------- hvm_op

/**
 * HYPERVISOR_hvm_op(op, struct xen_hvm_param *): HVMOP_get_param writes
 * `value` back; HVMOP_set_param goes through the same table, where a guest
 * is refused (EPERM: only the toolstack sets params).  Other ops ENOSYS.
 */
export function hvmOp(c: GuestCall, op: number, ptr: bigint): number {
  const L = HVM_STRUCT.param;
  if (op !== HVMOP.get_param && op !== HVMOP.set_param) throw new XenError('ENOSYS', `HVMOP ${op} is not available to guests`);
  const a = c.mem.read(ptr, L.size);
  const args = { domid: a.getUint16(L.domid, true), index: a.getUint32(L.index, true) };
  if (op === HVMOP.set_param) {
    const value = a.getBigUint64(L.value, true);
    call(c, 'hvm.set_param', { ...args, value: value > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(value) });
    return 0;
  }
  const { value } = call<{ value: number }>(c, 'hvm.get_param', args);
  c.mem.writeU64(ptr + BigInt(L.value), BigInt(value));
  return 0;
}

// ---------------------------------------------------------------- set_timer_op

/** HYPERVISOR_set_timer_op(timeout): VIRQ_TIMER on the calling vCPU at absolute guest time `timeout` ns; 0 cancels. */
export function setTimerOp(c: GuestCall, timeoutNs: bigint): number {
  const { hv, d, vcpu } = c;
  c.timers.set(d.domid, vcpu, timeoutNs, () => {
    if (!d.dying) hv.sendVirq(d, VIRQ.TIMER, vcpu);
  }, c.clockEpochMs);
  return 0;
}
