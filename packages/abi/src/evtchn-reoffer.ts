/**
 * xenbox's addition to EVTCHNOP for a restarted xenstored.  In Xen a
 * xenstored restart keeps its domain (live update), so guests' xenstore
 * channels stay bound; xenbox restarts xenstored as a new domain, whose
 * death returns each guest's store port to unbound, still offered to the
 * dead domain.  dom0 (the supervisor) re-offers that same port to the new
 * xenstored domain, so the guest keeps the port it read from
 * HVM_PARAM_STORE_EVTCHN, and then re-INTRODUCEs the guest.
 */
import type { DomId } from './domid.js';
import type { EvtchnPort } from './event-channel.js';

export interface EvtchnReofferArgs {
  /** The domain whose port it is. */
  dom: DomId;
  /** An unbound port of `dom`. */
  port: EvtchnPort;
  /** Who may bind it from now on. */
  remote_dom: DomId;
}

export interface EvtchnReofferHypercalls {
  /** dom0 only; EINVAL unless the port is unbound. */
  'evtchn.reoffer': { args: EvtchnReofferArgs; reply: null };
}
