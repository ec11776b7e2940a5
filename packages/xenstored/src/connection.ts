/**
 * One client of xenstored (struct connection in tools/xenstored/core.h):
 * which domain it speaks for, its watches and open transactions, and how to
 * send it bytes.  The transports (unix-socket.ts, zmq-socket.ts) make these.
 */
import { DOMID_DOM0, encodeXsMessage, XS, type XsHeader } from '@xenbox/abi';
import type { Requester } from './permissions.js';
import type { Transaction } from './transaction.js';
import type { Watch } from './watches.js';
import { domainPath } from './path.js';

export type ConnectionKind = 'unix' | 'zmq' | 'ring' | 'internal';

let nextConnectionId = 1;

export class Connection implements Requester {
  readonly id = nextConnectionId++;
  readonly watches: Watch[] = [];
  readonly transactions = new Map<number, Transaction>();
  private nextTxId = 1;
  closed = false;
  /** Set by the daemon: a stub domain's target, looked up on every check since SET_TARGET may come later. */
  targetOf: (domid: number) => number | undefined = () => undefined;
  /** Set by the daemon: runs before any bytes leave (the journal flush). */
  beforeSend: () => void = () => {};

  constructor(
    readonly kind: ConnectionKind,
    /** The domain this connection speaks for; undefined until a ZeroMQ peer authenticates. */
    public domid: number | undefined,
    /** Queue bytes to the peer (replies and watch events, in order). */
    private readonly write: (bytes: Buffer) => void,
    /** Drop the peer (malformed input, RELEASE). */
    readonly close: (reason: string) => void,
  ) {}

  get authenticated(): boolean {
    return this.domid !== undefined;
  }

  /** core.c domain_is_unprivileged(): only dom0 is privileged (xenbox has no separate priv_domid). */
  get privileged(): boolean {
    return this.domid === DOMID_DOM0;
  }

  get target(): number | undefined {
    return this.domid === undefined ? undefined : this.targetOf(this.domid);
  }

  /** Relative paths are relative to this (domain.c get_implicit_path()). */
  get home(): string {
    return domainPath(this.domid ?? DOMID_DOM0);
  }

  send(type: number, h: Pick<XsHeader, 'reqId' | 'txId'>, payload: Uint8Array): void {
    if (this.closed) return;
    this.beforeSend();
    this.write(encodeXsMessage(type, h.reqId, h.txId, payload));
  }

  sendEvent(path: string, token: string): void {
    const payload = Buffer.from(`${path}\0${token}\0`, 'latin1');
    // core.c send_event(): "Don't try to send over-long events."
    if (payload.length > 4096) return;
    this.send(XS.WATCH_EVENT, { reqId: 0, txId: 0 }, payload);
  }

  /** A fresh transaction id: never 0 (no transaction), never one in use (transaction.c do_transaction_start()). */
  allocTransactionId(): number {
    for (;;) {
      const id = this.nextTxId;
      this.nextTxId = (this.nextTxId + 1) >>> 0;
      if (id !== 0 && !this.transactions.has(id)) return id;
    }
  }

  /** core.c conn_delete_all_transactions() + watch.c conn_delete_all_watches(). */
  reset(): void {
    this.watches.length = 0;
    this.transactions.clear();
  }
}
