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
 */
import type { DomId } from './domid.js';
import type { DomainInfo, DomainKind } from './domain.js';

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
}
export interface CreateDomainReply {
  domid: DomId;
  uuid: string;
  /** The credential the process embodying the domain presents in `hello`. */
  token: string;
}

export interface Hypercalls {
  hello: { args: HelloArgs; reply: HelloReply };
  xen_version: { args: Record<string, never>; reply: XenVersionReply };
  'console_io.write': { args: { text: string }; reply: null };
  'domctl.createdomain': { args: CreateDomainArgs; reply: CreateDomainReply };
  'domctl.destroydomain': { args: { domid: DomId }; reply: null };
  'domctl.getdomaininfo': { args: { domid: DomId }; reply: DomainInfo };
  'sysctl.getdomaininfolist': { args: Record<string, never>; reply: DomainInfo[] };
}

export type HypercallOp = keyof Hypercalls;
export type HypercallArgs<O extends HypercallOp> = Hypercalls[O]['args'];
export type HypercallReply<O extends HypercallOp> = Hypercalls[O]['reply'];

/** Events the hypervisor pushes to a domain's connections. */
export interface HypervisorEvents {
  /** The domain was destroyed: its process should stop (Xen never runs a dead domain again). */
  'domain.destroyed': { domid: DomId; reason: string };
}
export type HypervisorEvent = keyof HypervisorEvents;

/** xen_version reported by the hypervisor: the Xen release whose ABI xenbox follows. */
export const XEN_VERSION = { major: 4, minor: 17, extra: '-xenbox' } as const;

/** Seconds a call waits for its reply unless the caller says otherwise. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;
