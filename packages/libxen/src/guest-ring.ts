/**
 * A guest's ring page reached through a reserved grant reference and an
 * interdomain event channel: how xenstored maps a guest's xenstore page
 * (domain.c map_interface + bind) and xenconsoled its console page
 * (io.c domain_create_ring) — GNTTAB_RESERVED_XENSTORE / _CONSOLE, grant
 * table v1 (grant_table.h).
 */
import type { DomId, EvtchnPort, GrantRef } from '@xenbox/abi';
import type { Evtchn } from './evtchn.js';
import type { GrantMapper } from './gnttab.js';
import type { MirrorPage } from './mirror.js';

export interface GuestRing {
  page: MirrorPage;
  /** Our end of the channel. */
  port: EvtchnPort;
  /** Make the page current (flush our writes, fetch the guest's): rmb()/mb(). */
  barrier(): Promise<void>;
  /** Signal the guest; a guest already gone is not an error here (its death arrives by VIRQ_DOM_EXC / @releaseDomain). */
  notify(): void;
  /** Call `fn` on each event from the guest. */
  onEvent(fn: () => void): void;
  /** Stop listening, close the channel, unmap the page. */
  teardown(): Promise<void>;
}

/**
 * Map `ref` of `domid` and bind to its `remotePort` (`bind` overrides the
 * binding, e.g. to close a stale one first).  On failure nothing stays
 * mapped or bound.
 */
export async function mapGuestRing(
  mapper: GrantMapper,
  evtchn: Evtchn,
  domid: DomId,
  ref: GrantRef,
  remotePort: EvtchnPort,
  bind: (domid: DomId, port: EvtchnPort) => Promise<EvtchnPort> = (d, p) => evtchn.bindInterdomain(d, p),
): Promise<GuestRing> {
  const { handle, page } = await mapper.mapOne(domid, ref);
  let port: EvtchnPort;
  try {
    port = await bind(domid, remotePort);
  } catch (e) {
    await mapper.unmap([{ handle, page }]).catch(() => undefined);
    throw e;
  }
  const offs: Array<() => void> = [];
  return {
    page,
    port,
    barrier: () => page.sync(),
    notify: () => {
      try {
        evtchn.notify(port);
      } catch {
        // ENOTCONN: the guest's end is gone.
      }
    },
    onEvent: (fn) => offs.push(evtchn.onEvent(port, fn)),
    teardown: async () => {
      offs.forEach((off) => off());
      await evtchn.close(port).catch(() => undefined);
      await mapper.unmap([{ handle, page }]);
    },
  };
}
