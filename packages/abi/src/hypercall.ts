/**
 * Hypercalls: the operations a domain process may ask of the hypervisor, with
 * their argument and reply shapes.  Named `<hypercall>.<subop>` after Xen's
 * own (XEN_DOMCTL_createdomain -> "domctl.createdomain"), so a reader of
 * xen/include/public recognises them.  Who may call what is checked in the
 * hypervisor on every call; the "priv" column below says what Xen allows.
 *
 * | op                         | priv  | Xen counterpart                          |
 * |----------------------------|-------|------------------------------------------|
 * | hello                      | any   | (xenbox) authenticate the connection     |
 * | xen_version                | any   | __HYPERVISOR_xen_version                 |
 * | console_io.write           | any   | __HYPERVISOR_console_io CONSOLEIO_write  |
 * | domctl.createdomain        | dom0  | XEN_DOMCTL_createdomain                  |
 * | domctl.destroydomain       | dom0  | XEN_DOMCTL_destroydomain                 |
 * | domctl.getdomaininfo       | dom0  | XEN_DOMCTL_getdomaininfo                 |
 * | sysctl.getdomaininfolist   | dom0  | XEN_SYSCTL_getdomaininfolist             |
 * | domctl.pausedomain/unpause | dom0  | XEN_DOMCTL_pausedomain / unpausedomain   |
 * | domctl.shutdown            | dom0  | SCHEDOP_remote_shutdown                  |
 * | domctl.max_mem / max_vcpus | dom0  | XEN_DOMCTL_max_mem / max_vcpus           |
 * | sched.shutdown             | self  | SCHEDOP_shutdown                         |
 * | sched.set_timer_op         | self  | __HYPERVISOR_set_timer_op (VIRQ_TIMER)   |
 * | sysctl.physinfo            | dom0  | XEN_SYSCTL_physinfo                      |
 * | domctl.setvcpucontext      | dom0  | XEN_DOMCTL_setvcpucontext                |
 * | console.subscribe / input  | dom0  | (xenconsoled's view of guest consoles)   |
 * | console_io.read            | dom0  | XEN_SYSCTL_readconsole (`xl dmesg [-c]`)  |
 * | memory.*                   | target| XENMEM_populate_physmap, _reservation ... |
 * | memory.read/write/cmpxchg  | self  | (a process's loads and stores)           |
 * | foreign.read/write         | target| privcmd foreign mapping                  |
 * | mirror.*                   | self  | (xenbox: page mirrors, DESIGN §4)        |
 * | gnttab.*                   | grants| GNTTABOP_*                               |
 * | evtchn.*                   | ports | EVTCHNOP_*                               |
 * | domctl/sysctl scheduling   | dom0  | see sched.ts (SchedHypercalls)           |
 * | hvm.* (ioreq, dm_op)       | target| see ioreq.ts (IoreqHypercalls)           |
 * | hvm.get_param / set_param  | target / dom0 | HVMOP_get_param / set_param (hvm-params.ts) |
 *
 * "target" means XSM_TARGET: the domain itself, dom0, or a stub domain for
 * its own guest.
 */
import type { DomId } from './domid.js';
import type { ConsoleInputArgs, ConsoleOutputEvent, SetVcpuContextArgs } from './guest.js';
import type { DomainCreateFlag, DomainInfo, DomainKind, PhysInfo, ShutdownReason } from './domain.js';
import type {
  DecreaseReservationArgs,
  ForeignReadArgs,
  ForeignWriteArgs,
  IncreaseReservationArgs,
  IncreaseReservationReply,
  MemoryCmpxchgArgs,
  MemoryReadArgs,
  MemoryWriteArgs,
  MirrorFlushArgs,
  MirrorMapOwnArgs,
  MirrorMapOwnReply,
  MirrorRefreshEvent,
  MirrorRevokedEvent,
  MirrorSyncArgs,
  MirrorSyncReply,
  PopulatePhysmapArgs,
  ReservationReply,
} from './memory.js';
import type { GnttabCopyArgs, GnttabCopyReply } from './gnttab-copy.js';
import type {
  GnttabMapGrantRef,
  GnttabMapResult,
  GnttabQuerySizeArgs,
  GnttabQuerySizeReply,
  GnttabSetupTableArgs,
  GnttabSetupTableReply,
  GnttabUnmapGrantRef,
  GnttabUnmapResult,
} from './grant-table.js';
import type {
  EvtchnAllocUnboundArgs,
  EvtchnBindInterdomainArgs,
  EvtchnBindVirqArgs,
  EvtchnPendingEvent,
  EvtchnPeerClosedEvent,
  EvtchnPort,
  EvtchnStatusArgs,
  EvtchnStatusReply,
} from './event-channel.js';
import type { SchedHypercalls } from './sched.js';
import type { IoreqEvents, IoreqHypercalls } from './ioreq.js';
import type { HvmParamHypercalls } from './hvm-params.js';
import type { EvtchnReofferHypercalls } from './evtchn-reoffer.js';

export interface HelloArgs {
  domid: DomId;
  token: string;
}
export interface HelloReply {
  domid: DomId;
  name: string;
  kind: DomainKind;
}

export interface XenVersionReply {
  major: number;
  minor: number;
  extra: string;
  /** "xenbox" — so a peer can tell it is not talking to real Xen. */
  implementation: string;
}

export interface CreateDomainArgs {
  name: string;
  kind: DomainKind;
  /** For a stub domain: the guest it serves. */
  target?: DomId;
  /** XEN_DOMCTL_CDF_* flags; 'hvm' is implied by kind 'hvm'. */
  flags?: DomainCreateFlag[];
  /** A UUID to use instead of a fresh one (libxl passes c_info->uuid). */
  uuid?: string;
  /** Initial max_mem in KiB (default: 16 MiB for a process domain, 128 MiB for a guest). */
  max_memkb?: number;
  /** Initial populated memory in KiB: a guest's RAM, populated from GUEST_RAM_BASE_GFN. */
  memkb?: number;
  max_vcpus?: number;
  max_grant_frames?: number;
  max_maptrack_frames?: number;
  max_evtchn_port?: number;
}
export interface CreateDomainReply {
  domid: DomId;
  uuid: string;
  /** The credential the process embodying the domain presents in `hello`. */
  token: string;
}

/** The op table: these, plus the scheduling ops of sched.ts (SchedHypercalls). */
export interface Hypercalls extends SchedHypercalls, IoreqHypercalls, HvmParamHypercalls, EvtchnReofferHypercalls {
  hello: { args: HelloArgs; reply: HelloReply };
  xen_version: { args: Record<string, never>; reply: XenVersionReply };
  'console_io.write': { args: { text: string }; reply: null };
  'domctl.createdomain': { args: CreateDomainArgs; reply: CreateDomainReply };
  'domctl.destroydomain': { args: { domid: DomId }; reply: null };
  'domctl.getdomaininfo': { args: { domid: DomId }; reply: DomainInfo };
  'sysctl.getdomaininfolist': { args: Record<string, never>; reply: DomainInfo[] };
  'sysctl.physinfo': { args: Record<string, never>; reply: PhysInfo };
  'console_io.read': { args: { clear?: boolean }; reply: { text: string } };
  'domctl.pausedomain': { args: { domid: DomId }; reply: null };
  'domctl.unpausedomain': { args: { domid: DomId }; reply: null };
  'domctl.shutdown': { args: { domid: DomId; reason: ShutdownReason }; reply: null };
  'domctl.max_mem': { args: { domid: DomId; max_memkb: number }; reply: null };
  /** xenbox: the hypervisor lists domains by name, so `xl rename` tells it (Xen keeps names in xenstore only). */
  'domctl.rename': { args: { domid: DomId; name: string }; reply: null };
  'domctl.max_vcpus': { args: { domid: DomId; max: number }; reply: null };
  'sched.shutdown': { args: { reason: ShutdownReason }; reply: null };
  /** Fire VIRQ_TIMER on vCPU 0 after timeout_ns (0 cancels); xenbox takes a relative time. */
  'sched.set_timer_op': { args: { timeout_ns: number }; reply: null };
  /** XEN_DOMCTL_setvcpucontext: where a vCPU starts (guest.ts). */
  'domctl.setvcpucontext': { args: SetVcpuContextArgs; reply: null };
  /** dom0's console daemon asks for every guest's console output (console.output events), the backlog first. */
  'console.subscribe': { args: Record<string, never>; reply: null };
  /** Keyboard input for a guest's console, from xenconsoled. */
  'console.input': { args: ConsoleInputArgs; reply: null };

  'memory.populate_physmap': { args: PopulatePhysmapArgs; reply: ReservationReply };
  'memory.increase_reservation': { args: IncreaseReservationArgs; reply: IncreaseReservationReply };
  'memory.decrease_reservation': { args: DecreaseReservationArgs; reply: ReservationReply };
  'memory.current_reservation': { args: { domid: DomId }; reply: number };
  'memory.maximum_reservation': { args: { domid: DomId }; reply: number };
  'memory.read': { args: MemoryReadArgs; reply: Uint8Array };
  'memory.write': { args: MemoryWriteArgs; reply: null };
  'memory.cmpxchg': { args: MemoryCmpxchgArgs; reply: number };
  'foreign.read': { args: ForeignReadArgs; reply: Uint8Array };
  'foreign.write': { args: ForeignWriteArgs; reply: null };
  'mirror.map_own': { args: MirrorMapOwnArgs; reply: MirrorMapOwnReply };
  'mirror.unmap_own': { args: { mids: number[] }; reply: null };
  'mirror.flush': { args: MirrorFlushArgs; reply: null };
  'mirror.sync': { args: MirrorSyncArgs; reply: MirrorSyncReply };

  'gnttab.setup_table': { args: GnttabSetupTableArgs; reply: GnttabSetupTableReply };
  'gnttab.query_size': { args: GnttabQuerySizeArgs; reply: GnttabQuerySizeReply };
  'gnttab.map_grant_ref': { args: { ops: GnttabMapGrantRef[] }; reply: GnttabMapResult[] };
  'gnttab.unmap_grant_ref': { args: { ops: GnttabUnmapGrantRef[] }; reply: GnttabUnmapResult[] };
  'gnttab.copy': { args: GnttabCopyArgs; reply: GnttabCopyReply };

  'evtchn.alloc_unbound': { args: EvtchnAllocUnboundArgs; reply: { port: EvtchnPort } };
  'evtchn.bind_interdomain': { args: EvtchnBindInterdomainArgs; reply: { local_port: EvtchnPort } };
  'evtchn.bind_virq': { args: EvtchnBindVirqArgs; reply: { port: EvtchnPort } };
  'evtchn.bind_ipi': { args: { vcpu: number }; reply: { port: EvtchnPort } };
  'evtchn.send': { args: { port: EvtchnPort }; reply: null };
  'evtchn.close': { args: { port: EvtchnPort }; reply: null };
  'evtchn.status': { args: EvtchnStatusArgs; reply: EvtchnStatusReply };
  'evtchn.unmask': { args: { port: EvtchnPort }; reply: null };
  'evtchn.reset': { args: { dom: DomId }; reply: null };
}

export type HypercallOp = keyof Hypercalls;
export type HypercallArgs<O extends HypercallOp> = Hypercalls[O]['args'];
export type HypercallReply<O extends HypercallOp> = Hypercalls[O]['reply'];

/** Events the hypervisor pushes to a domain's connections. */
export interface HypervisorEvents extends IoreqEvents {
  /** A guest wrote to its console (to subscribers of console.subscribe). */
  'console.output': ConsoleOutputEvent;
  /** The domain was destroyed: its process should stop (Xen never runs a dead domain again). */
  'domain.destroyed': { domid: DomId; reason: string };
  /** Ports that became pending; sent after any mirror refresh they depend on. */
  'evtchn.pending': EvtchnPendingEvent;
  /** The other end of an interdomain channel closed or died. */
  'evtchn.peer_closed': EvtchnPeerClosedEvent;
  /** New contents of mirrored pages (DESIGN §4). */
  'mirror.refresh': MirrorRefreshEvent;
  /** Mirrors that no longer map anything (the granter died or revoked): the next access fails. */
  'mirror.revoked': MirrorRevokedEvent;
}
export type HypervisorEvent = keyof HypervisorEvents;

/** xen_version reported by the hypervisor: the Xen release whose ABI xenbox follows. */
export const XEN_VERSION = { major: 4, minor: 17, extra: '-xenbox' } as const;

/** Seconds a call waits for its reply unless the caller says otherwise. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;
