/**
 * Event channels for a domain process, like libxenevtchn: bind, notify,
 * and a handler per port.  The hypervisor pushes `evtchn.pending` (after
 * refreshing every stale mirror), so a handler always sees current pages;
 * `notify()` flushes every dirty mirror before it sends (posted, no reply;
 * `send()` is the awaited form), so the peer does too.  A port whose remote
 * end went away reports `peerClosed`.
 */
import {
  DOMID_SELF,
  XenError,
  type DomId,
  type EvtchnPeerClosedEvent,
  type EvtchnPendingEvent,
  type EvtchnPort,
  type EvtchnStatusReply,
} from '@xenbox/abi';
import type { HypervisorConnection } from './hypervisor-connection.js';
import { Mirrors } from './mirror.js';

export type EventHandler = (port: EvtchnPort) => void;

const instances = new WeakMap<HypervisorConnection, Evtchn>();

export class Evtchn {
  private readonly handlers = new Map<EvtchnPort, Set<EventHandler>>();
  private readonly peerGone = new Map<EvtchnPort, string>();
  private readonly closeHandlers = new Map<EvtchnPort, Set<(why: string) => void>>();
  private readonly mirrors: Mirrors;
  /** Events received, for tests and benchmarks. */
  delivered = 0;

  private constructor(private readonly hv: HypervisorConnection) {
    this.mirrors = Mirrors.of(hv);
    hv.on('evtchn.pending', (e: EvtchnPendingEvent) => this.dispatch(e.ports));
    hv.on('evtchn.peer_closed', (e: EvtchnPeerClosedEvent) => this.peerClosed(e));
  }

  /** The event-channel handle of a connection (one per connection). */
  static of(hv: HypervisorConnection): Evtchn {
    let e = instances.get(hv);
    if (!e) instances.set(hv, (e = new Evtchn(hv)));
    return e;
  }

  /** Offer a port to `remoteDom` (EVTCHNOP_alloc_unbound). */
  async allocUnbound(remoteDom: DomId, dom: DomId = DOMID_SELF): Promise<EvtchnPort> {
    const port = (await this.hv.call('evtchn.alloc_unbound', { dom, remote_dom: remoteDom })).port;
    // A fresh port: news about an earlier channel that had the same number (a peer_closed that
    // crossed our close) is not about this one.
    if (dom === DOMID_SELF) this.forgetPort(port);
    return port;
  }

  private forgetPort(port: EvtchnPort): void {
    this.peerGone.delete(port);
  }

  async bindInterdomain(remoteDom: DomId, remotePort: EvtchnPort): Promise<EvtchnPort> {
    const port = (await this.hv.call('evtchn.bind_interdomain', { remote_dom: remoteDom, remote_port: remotePort })).local_port;
    this.peerGone.delete(port);
    return port;
  }

  async bindVirq(virq: number, vcpu = 0): Promise<EvtchnPort> {
    return (await this.hv.call('evtchn.bind_virq', { virq, vcpu })).port;
  }

  async bindIpi(vcpu = 0): Promise<EvtchnPort> {
    return (await this.hv.call('evtchn.bind_ipi', { vcpu })).port;
  }

  /**
   * Flush every dirty mirror, then send (EVTCHNOP_send) as a posted call:
   * no reply frame, so a notification costs one hop to the hypervisor, like
   * notify_remote_via_evtchn() whose result nobody looks at.  The flush and
   * the send leave in order on the one connection, so the peer's refresh
   * includes what we wrote.  Throws ENOTCONN at once if the peer has gone;
   * any other failure (a bad port) is logged by the hypervisor — use send()
   * to get Xen's error.
   */
  notify(port: EvtchnPort): void {
    const gone = this.peerGone.get(port);
    if (gone !== undefined) throw new XenError('ENOTCONN', `port ${port}: ${gone}`);
    this.mirrors.flush();
    this.hv.post('evtchn.send', { port });
  }

  /** Like notify(), but awaited: settles with Xen's answer (EINVAL for a port that is not bound ...). */
  send(port: EvtchnPort): Promise<null> {
    const gone = this.peerGone.get(port);
    if (gone !== undefined) return Promise.reject(new XenError('ENOTCONN', `port ${port}: ${gone}`));
    this.mirrors.flush();
    return this.hv.call('evtchn.send', { port });
  }

  async close(port: EvtchnPort): Promise<void> {
    this.handlers.delete(port);
    this.closeHandlers.delete(port);
    this.peerGone.delete(port);
    await this.hv.call('evtchn.close', { port });
    this.forgetPort(port); // a peer_closed may have crossed the close
  }

  status(port: EvtchnPort, dom: DomId = DOMID_SELF): Promise<EvtchnStatusReply> {
    return this.hv.call('evtchn.status', { dom, port });
  }

  async unmask(port: EvtchnPort): Promise<void> {
    await this.hv.call('evtchn.unmask', { port });
  }

  /** Run `fn` on every event on `port`; returns an unsubscribe function. */
  onEvent(port: EvtchnPort, fn: EventHandler): () => void {
    let set = this.handlers.get(port);
    if (!set) this.handlers.set(port, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Run `fn` when the remote end of `port` closes or its domain dies. */
  onPeerClosed(port: EvtchnPort, fn: (why: string) => void): () => void {
    let set = this.closeHandlers.get(port);
    if (!set) this.closeHandlers.set(port, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Whether the remote end of `port` has gone (the channel is closed for us). */
  peerClosed(port: EvtchnPort): boolean;
  peerClosed(e: EvtchnPeerClosedEvent): void;
  peerClosed(x: EvtchnPort | EvtchnPeerClosedEvent): boolean | void {
    if (typeof x === 'number') return this.peerGone.has(x);
    this.peerGone.set(x.port, x.reason);
    for (const fn of this.closeHandlers.get(x.port) ?? []) fn(x.reason);
  }

  private dispatch(ports: EvtchnPort[]): void {
    for (const port of ports) {
      this.delivered++;
      for (const fn of this.handlers.get(port) ?? []) fn(port);
    }
  }
}
