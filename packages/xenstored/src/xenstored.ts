/**
 * The daemon's core, independent of transport: the store, domains, quotas,
 * watches and connections, and the dispatch of one message to its handler
 * (core.c process_message()).  Transports hand it whole messages; replies
 * and events go back through each Connection.
 */
import { timingSafeEqual } from 'node:crypto';
import {
  DOMID_DOM0,
  XS,
  XS_QUOTA_NAMES,
  XS_RELEASE_DOMAIN,
  XSD_ERRORS,
  XENSTORE_PAYLOAD_MAX,
  XenError,
  isXsdError,
  xsTypeName,
  type XsHeader,
  type XsQuotaName,
} from '@xenbox/abi';
import type { Logger } from '@xenbox/libxen';
import type { Connection } from './connection.js';
import { doControl } from './control.js';
import { doGetDomainPath, doGetFeature, doGetQuota, doIntroduce, doIsDomainIntroduced, doRelease, doResume, doSetFeature, doSetQuota, doSetTarget } from './domain-operations.js';
import { Domains } from './domains.js';
import { doDirectory, doDirectoryPart, doGetPerms, doMkdir, doRead, doRm, doSetPerms, doWrite } from './operations.js';
import { childPath, ROOT } from './path.js';
import { ownerOf } from './permissions.js';
import { Quotas } from './quota.js';
import type { Reply, Request } from './request.js';
import { Store } from './store.js';
import { doTransactionEnd, doTransactionStart } from './transaction-operations.js';
import { doResetWatches, doUnwatch, doWatch } from './watch-operations.js';
import { WatchRegistry } from './watches.js';
import type { RingTransport } from './ring-listener.js';

interface Handler {
  fn: (req: Request) => Reply;
  /** XS_FLAG_PRIV: privileged domain only. */
  priv?: boolean;
  /** XS_FLAG_NOTID: the header's tx_id is ignored. */
  noTx?: boolean;
}

/** core.c wire_funcs[]. */
const HANDLERS: Partial<Record<number, Handler>> = {
  [XS.CONTROL]: { fn: doControl, priv: true },
  [XS.DIRECTORY]: { fn: doDirectory },
  [XS.READ]: { fn: doRead },
  [XS.GET_PERMS]: { fn: doGetPerms },
  [XS.WATCH]: { fn: doWatch, noTx: true },
  [XS.UNWATCH]: { fn: doUnwatch, noTx: true },
  [XS.TRANSACTION_START]: { fn: doTransactionStart },
  [XS.TRANSACTION_END]: { fn: doTransactionEnd },
  [XS.INTRODUCE]: { fn: doIntroduce, priv: true },
  [XS.RELEASE]: { fn: doRelease, priv: true },
  [XS.GET_DOMAIN_PATH]: { fn: doGetDomainPath },
  [XS.WRITE]: { fn: doWrite },
  [XS.MKDIR]: { fn: doMkdir },
  [XS.RM]: { fn: doRm },
  [XS.SET_PERMS]: { fn: doSetPerms },
  [XS.IS_DOMAIN_INTRODUCED]: { fn: doIsDomainIntroduced, priv: true },
  [XS.RESUME]: { fn: doResume, priv: true },
  [XS.SET_TARGET]: { fn: doSetTarget, priv: true },
  [XS.RESET_WATCHES]: { fn: doResetWatches },
  [XS.DIRECTORY_PART]: { fn: doDirectoryPart },
  [XS.GET_FEATURE]: { fn: doGetFeature },
  [XS.SET_FEATURE]: { fn: doSetFeature, priv: true },
  [XS.GET_QUOTA]: { fn: doGetQuota, priv: true },
  [XS.SET_QUOTA]: { fn: doSetQuota, priv: true },
};

export type StateChange =
  | { kind: 'quota'; scope: 'hard' | 'soft'; name: string; value: number }
  | { kind: 'domain-quota'; domid: number; name: string; value: number };

export class Xenstored {
  readonly store = new Store();
  readonly domains = new Domains();
  readonly quotas = new Quotas();
  readonly watches = new WatchRegistry(this.store);
  readonly connections = new Set<Connection>();
  /** CONTROL log: trace switches and on/off. */
  readonly trace = new Set<string>(['obj', 'io']);
  logging = false;
  /** Told about quota changes, for the journal (node and domain changes have their own hooks). */
  journal: ((c: StateChange) => void) | null = null;
  /** Runs before any bytes leave for any client: persistence.ts flushes the journal here. */
  beforeSend: () => void = () => {};
  /** Guests' rings (ring-listener.ts), when xenstored runs with a hypervisor. */
  rings: RingTransport | null = null;

  constructor(readonly log: Logger) {
    this.store.fire = (path, node, exact, oldPerms) => this.watches.fire(path, node, exact, oldPerms);
  }

  attach(conn: Connection): void {
    conn.targetOf = (domid) => this.domains.get(domid)?.target;
    conn.beforeSend = () => this.beforeSend();
    this.connections.add(conn);
  }

  detach(conn: Connection): void {
    conn.closed = true;
    this.watches.forget(conn);
    conn.transactions.clear();
    this.connections.delete(conn);
  }

  /**
   * A ZeroMQ peer proves it is `domid` with the secret dom0 gave in
   * INTRODUCE (or, for dom0, the one in $RUN_DIR/xenstored/dom0.secret).
   */
  authenticate(conn: Connection, domid: number, secret: string, dom0Secret: string): boolean {
    const expected = domid === DOMID_DOM0 ? dom0Secret : this.domains.isIntroduced(domid) ? this.domains.get(domid)?.secret : undefined;
    if (!expected || !sameSecret(expected, secret)) return false;
    conn.domid = domid;
    return true;
  }

  /** Serve one message; the reply (and any events it causes) go out on `conn`. */
  handle(conn: Connection, hdr: XsHeader, payload: Buffer): void {
    if (this.logging && this.trace.has('io')) this.log.info({ conn: conn.id, domid: conn.domid, type: xsTypeName(hdr.type), reqId: hdr.reqId, txId: hdr.txId, len: hdr.len }, 'IN');
    const after: Array<() => void> = [];
    try {
      const reply = this.serve(conn, hdr, payload, after);
      const bytes = typeof reply === 'string' ? Buffer.from(`${reply}\0`, 'latin1') : reply;
      // core.c send_reply(): an over-long reply becomes E2BIG (DIRECTORY of a big node).
      if (bytes.length > XENSTORE_PAYLOAD_MAX) throw new XenError('E2BIG', `reply of ${bytes.length} bytes exceeds ${XENSTORE_PAYLOAD_MAX}`);
      conn.send(hdr.type, hdr, bytes);
      for (const fn of after) fn();
    } catch (e) {
      this.sendError(conn, hdr, e);
    }
  }

  private serve(conn: Connection, hdr: XsHeader, payload: Buffer, after: Array<() => void>): Reply {
    const h = HANDLERS[hdr.type];
    if (!h) throw new XenError('ENOSYS', `unknown message type ${hdr.type}`);
    if (h.priv && !conn.privileged) throw new XenError('EACCES', `${xsTypeName(hdr.type)} is for the privileged domain only`);
    let tx;
    if (!h.noTx && hdr.txId !== 0) {
      tx = conn.transactions.get(hdr.txId);
      if (!tx) throw new XenError('ENOENT', `no transaction ${hdr.txId}`);
    }
    return h.fn({ xs: this, conn, hdr, payload, tx, view: tx ?? this.store, after });
  }

  /** core.c send_error(): the errno name plus NUL; a name outside xsd_errors[] is sent as EINVAL. */
  sendError(conn: Connection, hdr: XsHeader, e: unknown): void {
    let errno: string = 'EIO';
    if (e instanceof XenError) errno = e.errno;
    else this.log.error({ err: e, type: xsTypeName(hdr.type) }, 'handler failed unexpectedly');
    if (!isXsdError(errno)) errno = XSD_ERRORS[0];
    if (this.logging) this.log.info({ conn: conn.id, type: xsTypeName(hdr.type), errno, why: e instanceof Error ? e.message : String(e) }, 'ERROR');
    conn.send(XS.ERROR, hdr, Buffer.from(`${errno}\0`, 'latin1'));
  }

  connectionsOf(domid: number): Connection[] {
    return [...this.connections].filter((c) => c.domid === domid);
  }

  watchesOf(domid: number): number {
    let n = 0;
    for (const c of this.connections) if (c.domid === domid) n += c.watches.length;
    return n;
  }

  transactionsOf(domid: number): number {
    let n = 0;
    for (const c of this.connections) if (c.domid === domid) n += c.transactions.size;
    return n;
  }

  /** Current accounting values of a domain, for `xenstore-control quota <domid>`. */
  usage(domid: number): Record<XsQuotaName, number> {
    const u = Object.fromEntries(XS_QUOTA_NAMES.map((n) => [n, 0])) as Record<XsQuotaName, number>;
    u.nodes = this.store.nodesOwnedBy(domid);
    u.watches = this.watchesOf(domid);
    u.transactions = this.transactionsOf(domid);
    return u;
  }

  /** domain.c fire_special_watches(). */
  fireSpecial(name: string): void {
    this.watches.fire(name, this.store.get(name), true);
  }

  /**
   * RELEASE or destruction of a domain (domain.c destroy_domain()): its
   * connections go, the nodes it owns are removed (domain_tree_remove()),
   * and @releaseDomain fires.
   */
  releaseDomain(domid: number): void {
    for (const c of this.connectionsOf(domid)) {
      this.detach(c);
      c.close(`domain ${domid} released`);
    }
    if (this.store.nodesOwnedBy(domid) > 0) this.removeOwnedNodes(ROOT, domid);
    this.quotas.forgetDomain(domid);
    this.domains.forget(domid);
    this.fireSpecial(XS_RELEASE_DOMAIN);
  }

  private removeOwnedNodes(path: string, domid: number): void {
    const node = this.store.get(path);
    if (!node) return;
    if (path !== ROOT && ownerOf(node.perms) === domid) {
      this.store.remove(path, (p, n) => this.watches.fire(p, n, p !== path));
      return;
    }
    for (const c of [...node.children]) {
      if (this.store.nodesOwnedBy(domid) === 0) return;
      this.removeOwnedNodes(childPath(path, c), domid);
    }
  }

  setGlobalQuota(name: string, value: number): void {
    this.quotas.setGlobal(name, value);
    this.journal?.({ kind: 'quota', scope: 'hard', name, value });
  }

  setSoftQuota(name: string, value: number): void {
    this.quotas.setSoft(name, value);
    this.journal?.({ kind: 'quota', scope: 'soft', name, value });
  }

  setDomainQuota(domid: number, name: string, value: number): void {
    this.quotas.setForDomain(domid, name, value);
    this.journal?.({ kind: 'domain-quota', domid, name, value });
  }

  /** CONTROL check: every listed child exists and every node is listed by its parent. */
  checkStore(): void {
    let problems = 0;
    for (const [path, node] of this.store.walk(ROOT)) {
      for (const c of node.children) if (!this.store.has(childPath(path, c))) problems++;
    }
    this.log.info({ problems, nodes: this.store.size }, 'store checked');
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'latin1');
  const y = Buffer.from(b, 'latin1');
  return x.length === y.length && timingSafeEqual(x, y);
}
