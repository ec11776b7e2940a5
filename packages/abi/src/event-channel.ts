/**
 * Event channels (xen/include/public/event_channel.h, xen/common/event_2l.c).
 * 2-level ABI semantics: a pending and a mask bit per port.
 */
export type EvtchnPort = number;

export const EVTCHNOP = {
  bind_interdomain: 0,
  bind_virq: 1,
  bind_pirq: 2,
  close: 3,
  send: 4,
  status: 5,
  alloc_unbound: 6,
  bind_ipi: 7,
  bind_vcpu: 8,
  unmask: 9,
  reset: 10,
  init_control: 11,
  expand_array: 12,
  set_priority: 13,
} as const;

export const EVTCHNSTAT = {
  closed: 0,
  unbound: 1,
  interdomain: 2,
  pirq: 3,
  virq: 4,
  ipi: 5,
} as const;
export type EvtchnStatusName = keyof typeof EVTCHNSTAT;

/** xen.h VIRQ_* numbers. */
export const VIRQ = {
  TIMER: 0,
  DEBUG: 1,
  CONSOLE: 2,
  DOM_EXC: 3,
  TBUF: 4,
  DEBUGGER: 6,
  XENOPROF: 7,
  CON_RING: 8,
  PCPU_STATE: 9,
  MEM_EVENT: 10,
  ARGO: 11,
  ENOMEM: 12,
  XENPMU: 13,
} as const;
export const NR_VIRQS = 24;
/** Per-vCPU VIRQs (virq_is_global() false): the rest are global, bound on vCPU 0. */
export const PER_VCPU_VIRQS: readonly number[] = [VIRQ.TIMER, VIRQ.DEBUG, VIRQ.XENOPROF, VIRQ.XENPMU];

/** 2-level ABI: 64 words of 64 bits (EVTCHN_2L_NR_CHANNELS). */
export const EVTCHN_2L_NR_CHANNELS = 4096;
/** xl.cfg max_event_channels default: ports 1..1023 (port 0 is reserved). */
export const EVTCHN_MAX_DEFAULT = 1023;
export const EVTCHN_PORT_RESERVED = 0;

export interface EvtchnAllocUnboundArgs {
  dom: number;
  remote_dom: number;
}
export interface EvtchnBindInterdomainArgs {
  remote_dom: number;
  remote_port: EvtchnPort;
}
export interface EvtchnBindVirqArgs {
  virq: number;
  vcpu: number;
}
export interface EvtchnStatusArgs {
  dom: number;
  port: EvtchnPort;
}
export interface EvtchnStatusReply {
  status: EvtchnStatusName;
  vcpu: number;
  /** unbound: who may bind; interdomain: the other end. */
  dom?: number;
  port?: EvtchnPort;
  virq?: number;
}

/** Pushed to a process domain: ports that became pending (batched). */
export interface EvtchnPendingEvent {
  ports: EvtchnPort[];
}
/** Pushed when the remote end of an interdomain channel went away (closed or its domain died). */
export interface EvtchnPeerClosedEvent {
  port: EvtchnPort;
  remote_dom: number;
  reason: string;
}
