/**
 * The hypervisor: owns the domain table and serves hypercalls from domain
 * processes on a ROUTER at ipc://$RUN_DIR/hypervisor.sock.
 *
 * A connection is nobody until its first call, `hello`, proves a domain with
 * the token minted for it.  A connection that fails that is refused for good:
 * every later call gets EACCES and nothing is done for it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  DOMID_DOM0,
  GUEST_RAM_BASE_GFN,
  VIRQ,
  XEN_VERSION,
  XenError,
  argDomId,
  argObject,
  argString,
  ipcEndpoint,
  runDirLayout,
  type CallMsg,
  type DomId,
  type DomainKind,
  type EvtchnPort,
  type HelloReply,
  type ShutdownReason,
} from '@xenbox/abi';
import { RpcServer, type Logger, type Peer, ZapHandler, curveFiles, loadOrCreateServerKeys } from '@xenbox/libxen';
import { ConsoleRing } from './common/console.js';
import { GuestVcpus } from './common/guest-vcpus.js';
import { IoreqServers } from './common/ioreq.js';
import { guestOps } from './common/guest-ops.js';
import { Domain, DomainTable, type DomainConfig } from './common/domain.js';
import { domctlOps } from './common/domctl.js';
import { closeAll, evtchnOps } from './common/evtchn-ops.js';
import { gnttabOps, unmapGrantRef } from './common/gnttab-ops.js';
import { HostMemory } from './common/host-memory.js';
import { lookupHypercall, type HypercallTable } from './common/hypercall-table.js';
import { memoryOps } from './common/memory-ops.js';
import { kbToPages } from './common/memory.js';
import { snapshot, type Mirror } from './common/mirror.js';
import { sysctlOps } from './common/sysctl.js';
import { schedOps } from './common/sched-ops.js';
import { hvmParamOps } from './common/hvm-params.js';
import { evtchnReofferOps } from './common/evtchn-reoffer.js';

/**
 * How the vCPU layer raises an event upcall in a guest: called when a port
 * of `domain` became pending and unmasked and its vCPU's
 * evtchn_upcall_pending was newly set (vcpu_mark_events_pending).  The
 * pending/mask bitmaps and per-vCPU selector are in domain.evtchn.
 */
export type GuestUpcallHook = (domain: Domain, vcpu: number) => void;

export type Session = { domid: DomId } | { refused: string };

export interface HypervisorOptions {
  runDir: string;
  log: Logger;
  /** pCPU worker threads for guests' vCPUs (`--pcpus`); default the host's parallelism. */
  pcpus?: number;
  /** Extra endpoints to bind besides the run dir's ipc socket (e.g. tcp://127.0.0.1:5555). */
  extraEndpoints?: string[];
  /** Host memory all domains together may use (--host-mem), bytes. */
  hostMemBytes?: number;
  /** Events for connections no server knows (unit tests drive the hypervisor without sockets). */
  onUnroutedEvent?: (peerKey: string, ev: string, data: unknown) => void;
}

export class Hypervisor {
  readonly domains: DomainTable;
  readonly console = new ConsoleRing();
  private readonly servers: RpcServer<Session>[] = [];
  private readonly table: HypercallTable;
  readonly log: Logger;
  private guestUpcall: GuestUpcallHook | null = null;
  private readonly toDeliver = new Set<Domain>();
  private deliveryScheduled = false;

  constructor(private readonly opts: HypervisorOptions) {
    this.log = opts.log;
    this.domains = new DomainTable(new HostMemory(opts.hostMemBytes));
    this.ioreq = new IoreqServers(this);
    this.table = { ...this.commonOps(), ...domctlOps(this), ...sysctlOps(this), ...memoryOps(this), ...gnttabOps(this), ...evtchnOps(this), ...guestOps(this), ...schedOps(this), ...hvmParamOps(this), ...evtchnReofferOps(this), ...this.ioreq.ops() };
    this.guests = new GuestVcpus(this, { pcpus: opts.pcpus });
  }

  /** The vCPU layer registers how to inject an event upcall into a guest. */
  setGuestUpcallHook(hook: GuestUpcallHook | null): void {
    this.guestUpcall = hook;
  }

  private zap: ZapHandler | null = null;
  /** Guests' vCPUs on the scheduler's pCPU workers. */
  readonly guests: GuestVcpus;
  /** HVM guests' device models (ioreq servers, common/ioreq.ts). */
  readonly ioreq: IoreqServers;
  /** dom0 connections that asked for guest console output (xenconsoled). */
  private readonly consoleSubscribers = new Set<string>();
  private readonly consoleLines = new Map<DomId, string>();

  /** Boot: create dom0, publish its token, start serving. */
  async start(): Promise<void> {
    const layout = runDirLayout(this.opts.runDir);
    const { token } = this.domains.create('Domain-0', 'dom0', null, DOMID_DOM0);
    mkdirSync(layout.hypervisorDir, { recursive: true, mode: 0o700 });
    writeFileSync(layout.dom0Token, token + '\n', { mode: 0o600 });
    this.console.write('xen', `Xen version ${XEN_VERSION.major}.${XEN_VERSION.minor}${XEN_VERSION.extra} (xenbox)`);
    this.console.write('xen', `Host memory: ${this.domains.host.totalPages} pages (${Math.round(this.domains.host.totalPages / 256)} MiB) for domains`);
    // tcp endpoints reach beyond this host: CURVE with a ZAP handler (DESIGN §3, libxen/curve.ts).
    const tcp = this.opts.extraEndpoints ?? [];
    const curve = tcp.length ? loadOrCreateServerKeys(layout.hypervisorDir) : undefined;
    if (curve) {
      this.zap = new ZapHandler(curveFiles(layout.hypervisorDir).clients, this.log);
      await this.zap.start();
    }
    for (const endpoint of [ipcEndpoint(layout.hypervisorSocket), ...tcp]) {
      const server = new RpcServer<Session>({
        endpoint,
        log: this.log,
        curve: endpoint.startsWith('ipc://') ? undefined : curve,
        handle: (peer, call) => this.serve(peer, call),
        onPeerGone: (peer) => this.dropConnection(peer),
      });
      await server.bind();
      this.servers.push(server);
      this.log.info({ endpoint }, 'serving hypercalls');
    }
  }

  async stop(): Promise<void> {
    for (const s of this.servers) await s.close();
    this.zap?.close();
    await this.guests.stop();
  }

  /** console.subscribe: this dom0 connection gets every guest's console output, starting with what it missed. */
  subscribeConsole(peerKey: string): void {
    this.consoleSubscribers.add(peerKey);
    for (const [domid, data] of this.guests.backlogs()) this.pushToPeer(peerKey, 'console.output', { domid, data });
  }

  /** A guest wrote to its console: to `xl dmesg` by the line, and to xenconsoled as it comes. */
  guestConsoleOutput(d: Domain, bytes: Uint8Array): void {
    const text = (this.consoleLines.get(d.domid) ?? '') + Buffer.from(bytes).toString('latin1');
    const nl = text.lastIndexOf('\n');
    if (nl >= 0) this.console.write(d.domid, text.slice(0, nl));
    this.consoleLines.set(d.domid, text.slice(nl + 1).slice(-1024));
    for (const key of this.consoleSubscribers) {
      if (this.peer(key)) this.pushToPeer(key, 'console.output', { domid: d.domid, data: bytes });
      else this.consoleSubscribers.delete(key);
    }
  }

  /**
   * Create a domain; with config.memKb its RAM is populated at once, so a
   * domain the host cannot hold fails here with ENOMEM and leaves nothing behind.
   */
  createDomain(name: string, kind: DomainKind, target: DomId | null, config: DomainConfig & { memKb?: number } = {}): { domain: Domain; token: string } {
    const created = this.domains.create(name, kind, target, undefined, config);
    const d = created.domain;
    // A guest is born paused (domain_create's controller pause); the toolstack unpauses it once built.
    if (!d.isProcess) d.paused = true;
    if (config.memKb) {
      try {
        const pages = kbToPages(config.memKb);
        if (pages > d.memory.maxPages) d.memory.maxPages = pages;
        const base = d.isProcess ? 0 : GUEST_RAM_BASE_GFN;
        for (let i = 0; i < pages; i++) d.memory.populate(base + i);
      } catch (e) {
        d.memory.teardown();
        this.domains.remove(d.domid);
        throw e;
      }
    }
    this.console.write('xen', `d${d.domid}: created domain '${name}' (${kind}, ${d.memory.totPages} pages, max ${d.memory.maxPages})`);
    this.log.info({ dom: d.domid, domain: name, kind }, 'domain created');
    return created;
  }

  /**
   * Destroy always succeeds for a live domain, however wedged
   * (domain_kill + domain_relinquish_resources): event channels closed with
   * the remote ends told, the grants it mapped unmapped, the mappings others
   * hold of its grants revoked, its memory freed; its connections are told
   * and cut off, and dom0 gets VIRQ_DOM_EXC.
   */
  destroyDomain(domid: DomId, reason: string): void {
    const d = this.domains.require(domid);
    d.dying = true;
    if (d.timer) clearTimeout(d.timer);
    closeAll(this, d, `domain ${domid} was destroyed`);
    for (const [handle] of d.grants.mappings()) unmapGrantRef(this, d, handle);
    this.revokeMappingsOf(d);
    this.revokeMirrors(d.memory.teardown().flatMap((p) => [...p.mirrors]), `domain ${domid} was destroyed`);
    for (const key of d.connections) {
      const found = this.peer(key);
      if (!found) continue;
      found.server.push(found.peer, 'domain.destroyed', { domid, reason });
      found.peer.state = { refused: `domain ${domid} was destroyed` };
    }
    this.toDeliver.delete(d);
    this.consoleLines.delete(domid);
    this.ioreq.domainGone(d);
    this.guests.remove(domid).catch((e: unknown) => this.log.error({ err: e, dom: domid }, 'stopping the vCPUs failed'));
    this.domains.remove(domid);
    this.console.write('xen', `d${domid}: domain '${d.name}' destroyed (${reason})`);
    this.log.info({ dom: domid, domain: d.name, reason }, 'domain destroyed');
    this.sendGlobalVirq(VIRQ.DOM_EXC);
  }

  setPaused(d: Domain, paused: boolean): void {
    if (d.paused === paused) return;
    d.paused = paused;
    if (paused) void this.guests.pause(d);
    else if (d.shutdown === null) this.guests.unpause(d);
    this.console.write('xen', `d${d.domid}: ${paused ? 'paused' : 'unpaused'}`);
  }

  /** SCHEDOP_shutdown: record the reason and tell dom0 (VIRQ_DOM_EXC); the toolstack decides what next. */
  shutdownDomain(d: Domain, reason: ShutdownReason): void {
    if (d.shutdown !== null) return; // the first reason sticks, as in domain_shutdown()
    d.shutdown = reason;
    // domain_shutdown() stops the vCPUs; the domain stays until the toolstack destroys it.
    void this.guests.pause(d);
    this.console.write('xen', `d${d.domid}: shut down (${reason})`);
    this.log.info({ dom: d.domid, reason }, 'domain shut down');
    this.sendGlobalVirq(VIRQ.DOM_EXC);
  }

  /** set_timer_op: VIRQ_TIMER on vCPU 0 after timeoutNs; 0 cancels. */
  setTimer(d: Domain, timeoutNs: number): void {
    if (d.timer) clearTimeout(d.timer);
    d.timer = null;
    if (timeoutNs === 0) return;
    d.timer = setTimeout(() => {
      d.timer = null;
      if (!d.dying) this.sendVirq(d, VIRQ.TIMER, 0);
    }, Math.ceil(timeoutNs / 1e6));
    d.timer.unref();
  }

  // ------------------------------------------------------------ event delivery

  /** evtchn_port_set_pending(): set pending, and kick the vCPU if that raised an upcall. */
  setPending(d: Domain, port: EvtchnPort, _from?: Domain): void {
    if (d.dying) return;
    if (d.evtchn.setPending(port)) this.kick(d, d.evtchn.channel(port).vcpu);
  }

  /** send_guest_vcpu_virq(). */
  sendVirq(d: Domain, virq: number, vcpu: number): void {
    const port = d.evtchn.virqPort(virq, vcpu);
    if (port !== undefined) this.setPending(d, port);
  }

  /**
   * send_global_virq(): to the global VIRQ handler.  That is dom0, except
   * VIRQ_DOM_EXC goes to a live xenstore domain (createdomain flag
   * xs_domain) when there is one: what init-xenstore-domain sets up in Xen
   * with xc_domain_set_virq_handler(VIRQ_DOM_EXC), so xenstored learns of
   * every shutdown and death (get_global_virq_handler() falls back to dom0).
   */
  sendGlobalVirq(virq: number): void {
    const xs = virq === VIRQ.DOM_EXC ? this.domains.all().find((d) => d.flags.includes('xs_domain') && !d.dying) : undefined;
    const handler = xs ?? this.domains.get(DOMID_DOM0);
    if (handler) this.sendVirq(handler, virq, 0);
  }

  /** vcpu_mark_events_pending(): a guest gets an upcall; a process gets a message (batched). */
  kick(d: Domain, vcpu: number): void {
    if (!d.isProcess) {
      this.guestUpcall?.(d, vcpu);
      return;
    }
    this.toDeliver.add(d);
    if (this.deliveryScheduled) return;
    this.deliveryScheduled = true;
    queueMicrotask(() => this.deliverAll());
  }

  private deliverAll(): void {
    this.deliveryScheduled = false;
    const ds = [...this.toDeliver];
    this.toDeliver.clear();
    for (const d of ds) this.deliver(d);
  }

  /**
   * Deliver a process domain's pending ports: first every stale mirror it
   * holds (so the pages are current when it looks), then the ports, on the
   * same connection so they arrive in that order.  With no connection yet the
   * ports stay pending until it says hello.
   */
  private deliver(d: Domain): void {
    if (d.dying || d.connections.size === 0) return;
    const ports = d.evtchn.takePending(0);
    if (ports.length === 0) return;
    // Only mirrors whose page was written since they were last sent (none to look at for most event-only domains).
    if (d.mirrors.size !== 0) this.pushMirrorRefreshes(d.mirrors.takeStale());
    this.pushToDomain(d, 'evtchn.pending', { ports });
  }

  private pushMirrorRefreshes(mirrors: Mirror[]): void {
    for (const [key, ms] of groupByPeer(mirrors)) this.pushToPeer(key, 'mirror.refresh', { pages: ms.map((m) => ({ mid: m.mid, data: snapshot(m) })) });
  }

  /** The remote end of an interdomain channel went away: its owner is told. */
  tellPeerClosed(d: Domain, port: EvtchnPort, remoteDom: DomId, reason: string): void {
    if (!d.dying) this.pushToDomain(d, 'evtchn.peer_closed', { port, remote_dom: remoteDom, reason });
  }

  /** Drop mirrors (their page is gone) and tell their holders, whose next access then fails. */
  revokeMirrors(mirrors: Mirror[], reason: string): void {
    for (const m of mirrors) this.domains.get(m.holder)?.mirrors.remove(m);
    for (const [key, ms] of groupByPeer(mirrors)) this.pushToPeer(key, 'mirror.revoked', { mids: ms.map((m) => m.mid), reason });
  }

  /** gnttab_release_mappings() seen from the granter: every mapping of d's grants goes. */
  private revokeMappingsOf(d: Domain): void {
    const mappers = new Set([...d.grants.active.values()].map((a) => a.mapper));
    for (const mid of mappers) {
      const ld = this.domains.get(mid);
      if (!ld) continue;
      const revoked: Mirror[] = [];
      for (const [handle, map] of ld.grants.mappings()) {
        if (map.granter !== d.domid) continue;
        if (map.mirror) revoked.push(map.mirror);
        ld.grants.putHandle(handle);
      }
      this.revokeMirrors(revoked, `the granting domain d${d.domid} was destroyed`);
    }
    d.grants.active.clear();
  }

  private pushToDomain(d: Domain, ev: string, data: unknown): void {
    for (const key of d.connections) this.pushToPeer(key, ev, data);
  }

  /** Push an event to one connection (the ioreq servers' requests go to the device model's). */
  pushToPeer(key: string, ev: string, data: unknown): void {
    const found = this.peer(key);
    if (found) found.server.push(found.peer, ev, data);
    else this.opts.onUnroutedEvent?.(key, ev, data);
  }

  /**
   * Make a hypercall as domain `domid` on connection `peerKey`, through the
   * same table and checks as a call from a socket: for guest hypercalls from
   * the vCPU layer, and for unit tests.
   */
  hypercall(domid: DomId, op: string, args: unknown, peerKey = `local-d${domid}`): unknown {
    const caller = this.domains.get(domid);
    if (!caller || caller.dying) throw new XenError('ESRCH', `no domain ${domid}`);
    return lookupHypercall(this.table, op, caller).handle(caller, args, { peerKey });
  }

  /** Attach a connection key to a domain without a socket (unit tests; the vCPU layer's guests). */
  attachConnection(domid: DomId, peerKey: string): void {
    const d = this.domains.require(domid);
    d.connections.add(peerKey);
    if (d.evtchn.hasDeliverable()) this.kick(d, 0);
  }

  /** Create dom0 without serving (unit tests). */
  bootForTest(): string {
    return this.domains.create('Domain-0', 'dom0', null, DOMID_DOM0).token;
  }

  private peer(key: string): { server: RpcServer<Session>; peer: Peer<Session> } | undefined {
    for (const server of this.servers) {
      const peer = server.peerByKey(key);
      if (peer) return { server, peer };
    }
    return undefined;
  }

  private serve(peer: Peer<Session>, call: CallMsg): unknown {
    const session = peer.state;
    if (session === undefined) return this.hello(peer, call);
    if ('refused' in session) throw new XenError('EACCES', `connection refused: ${session.refused}`);
    const caller = this.domains.get(session.domid);
    if (!caller) throw new XenError('EACCES', `domain ${session.domid} no longer exists`);
    if (call.op === 'hello') throw new XenError('EISCONN', `connection is already authenticated as d${caller.domid}`);
    return lookupHypercall(this.table, call.op, caller).handle(caller, call.args, { peerKey: peer.key });
  }

  private hello(peer: Peer<Session>, call: CallMsg): HelloReply {
    if (call.op !== 'hello') {
      peer.state = { refused: 'first call was not hello' };
      throw new XenError('EACCES', `${call.op}: connection not authenticated: the first call must be hello`);
    }
    try {
      const a = argObject('hello', call.args);
      const domid = argDomId('hello', a);
      const token = argString('hello', a, 'token', 256);
      const d = this.domains.get(domid);
      if (!d || d.dying || !d.tokenMatches(token)) throw new XenError('EACCES', `hello: bad credentials for domain ${domid}`);
      peer.state = { domid };
      d.connections.add(peer.key);
      if (d.evtchn.hasDeliverable()) this.kick(d, 0); // events that arrived before it connected
      this.log.info({ dom: domid, domain: d.name, peer: peer.key }, 'domain connected');
      return { domid, name: d.name, kind: d.kind };
    } catch (e) {
      peer.state = { refused: 'authentication failed' };
      this.log.warn({ peer: peer.key, err: (e as Error).message }, 'refused a connection');
      throw e instanceof XenError && e.errno === 'EACCES' ? e : new XenError('EACCES', `hello refused: ${(e as Error).message}`);
    }
  }

  /** A connection went away: forget it, and the mirrors only it held (grant mappings stay until unmapped or destroyed, as in Xen). */
  private dropConnection(peer: Peer<Session>): void {
    const s = peer.state;
    const d = s && 'domid' in s ? this.domains.get(s.domid) : undefined;
    if (!d) return;
    d.connections.delete(peer.key);
    for (const m of d.mirrors.heldBy(peer.key)) d.mirrors.remove(m);
  }

  private commonOps(): HypercallTable {
    return {
      xen_version: { priv: 'hook', handle: () => ({ ...XEN_VERSION, implementation: 'xenbox' }) },
      'console_io.write': {
        priv: 'hook',
        handle: (caller, raw) => {
          const text = argString('console_io.write', argObject('console_io.write', raw), 'text', 16 * 1024);
          this.console.write(caller.domid, text);
          this.sendGlobalVirq(VIRQ.CON_RING);
          return null;
        },
      },
    };
  }
}

function groupByPeer(mirrors: Mirror[]): Map<string, Mirror[]> {
  const out = new Map<string, Mirror[]>();
  for (const m of mirrors) {
    let list = out.get(m.peerKey);
    if (!list) out.set(m.peerKey, (list = []));
    list.push(m);
  }
  return out;
}
