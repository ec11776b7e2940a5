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
  type HelloReply,
} from '@xenbox/abi';
import { RpcServer, type Logger, type Peer } from '@xenbox/libxen';
import { ConsoleRing } from './common/console.js';
import { Domain, DomainTable } from './common/domain.js';
import { domctlOps } from './common/domctl.js';
import { lookupHypercall, type HypercallTable } from './common/hypercall-table.js';

export type Session = { domid: DomId } | { refused: string };

export interface HypervisorOptions {
  runDir: string;
  log: Logger;
  /** Extra endpoints to bind besides the run dir's ipc socket (e.g. tcp://127.0.0.1:5555). */
  extraEndpoints?: string[];
}

export class Hypervisor {
  readonly domains = new DomainTable();
  readonly console = new ConsoleRing();
  private readonly servers: RpcServer<Session>[] = [];
  private readonly table: HypercallTable;
  readonly log: Logger;

  constructor(private readonly opts: HypervisorOptions) {
    this.log = opts.log;
    this.table = { ...this.commonOps(), ...domctlOps(this) };
  }

  /** Boot: create dom0, publish its token, start serving. */
  async start(): Promise<void> {
    const layout = runDirLayout(this.opts.runDir);
    const { token } = this.domains.create('Domain-0', 'dom0', null, DOMID_DOM0);
    mkdirSync(layout.hypervisorDir, { recursive: true, mode: 0o700 });
    writeFileSync(layout.dom0Token, token + '\n', { mode: 0o600 });
    this.console.write('xen', `Xen version ${XEN_VERSION.major}.${XEN_VERSION.minor}${XEN_VERSION.extra} (xenbox)`);
    for (const endpoint of [ipcEndpoint(layout.hypervisorSocket), ...(this.opts.extraEndpoints ?? [])]) {
      const server = new RpcServer<Session>({
        endpoint,
        log: this.log,
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
  }

  createDomain(name: string, kind: DomainKind, target: DomId | null): { domain: Domain; token: string } {
    const created = this.domains.create(name, kind, target);
    this.console.write('xen', `d${created.domain.domid}: created domain '${name}' (${kind})`);
    this.log.info({ dom: created.domain.domid, domain: name, kind }, 'domain created');
    return created;
  }

  /** Destroy always succeeds for a live domain, however wedged: its connections are told and cut off. */
  destroyDomain(domid: DomId, reason: string): void {
    const d = this.domains.require(domid);
    d.dying = true;
    for (const server of this.servers) {
      for (const key of d.connections) {
        const peer = server.peerByKey(key);
        if (!peer) continue;
        server.push(peer, 'domain.destroyed', { domid, reason });
        peer.state = { refused: `domain ${domid} was destroyed` };
      }
    }
    this.domains.remove(domid);
    this.console.write('xen', `d${domid}: domain '${d.name}' destroyed (${reason})`);
    this.log.info({ dom: domid, domain: d.name, reason }, 'domain destroyed');
  }

  private serve(peer: Peer<Session>, call: CallMsg): unknown {
    const session = peer.state;
    if (session === undefined) return this.hello(peer, call);
    if ('refused' in session) throw new XenError('EACCES', `connection refused: ${session.refused}`);
    const caller = this.domains.get(session.domid);
    if (!caller) throw new XenError('EACCES', `domain ${session.domid} no longer exists`);
    if (call.op === 'hello') throw new XenError('EISCONN', `connection is already authenticated as d${caller.domid}`);
    return lookupHypercall(this.table, call.op, caller).handle(caller, call.args);
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
      this.log.info({ dom: domid, domain: d.name, peer: peer.key }, 'domain connected');
      return { domid, name: d.name, kind: d.kind };
    } catch (e) {
      peer.state = { refused: 'authentication failed' };
      this.log.warn({ peer: peer.key, err: (e as Error).message }, 'refused a connection');
      throw e instanceof XenError && e.errno === 'EACCES' ? e : new XenError('EACCES', `hello refused: ${(e as Error).message}`);
    }
  }

  private dropConnection(peer: Peer<Session>): void {
    const s = peer.state;
    if (s && 'domid' in s) this.domains.get(s.domid)?.connections.delete(peer.key);
  }

  private commonOps(): HypercallTable {
    return {
      xen_version: { priv: 'hook', handle: () => ({ ...XEN_VERSION, implementation: 'xenbox' }) },
      'console_io.write': {
        priv: 'hook',
        handle: (caller, raw) => {
          const text = argString('console_io.write', argObject('console_io.write', raw), 'text', 16 * 1024);
          this.console.write(caller.domid, text);
          return null;
        },
      },
    };
  }
}
