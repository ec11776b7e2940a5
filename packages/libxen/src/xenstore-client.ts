/**
 * A xenstore client, like tools/libs/store (libxenstore): the same messages
 * over either of xenstored's two ways in for processes --
 *
 *   - the Unix socket $RUN_DIR/xenstored/socket (dom0 tools; the connection
 *     is dom0), or
 *   - ZeroMQ, ipc://$RUN_DIR/xenstored/xs.sock, for process domains, which
 *     first prove their domid with the secret dom0 gave xenstored in
 *     INTRODUCE (docs/xenstored.md).
 *
 * Requests are pipelined (many in flight, matched by req_id).  When
 * xenstored restarts, the client reconnects, re-registers its watches (each
 * fires once, as a new watch does -- watches may always fire spuriously),
 * re-sends requests that are safe to repeat, and fails anything that
 * belonged to a transaction with EAGAIN: the transaction helper then runs
 * the transaction again.
 */
import { createConnection, type Socket } from 'node:net';
import { Dealer } from 'zeromq';
import {
  XENSTORE_PAYLOAD_MAX,
  XS,
  XSD_SOCKMSG_SIZE,
  XS_XENBOX_AUTH,
  XenError,
  decodeXsHeader,
  encodeXsMessage,
  ipcEndpoint,
  isXenErrno,
  runDirLayout,
  splitXsStrings,
  xsTypeName,
  type XsHeader,
} from '@xenbox/abi';

export interface XsWatchEvent {
  path: string;
  token: string;
}

export interface XsPerm {
  id: number;
  perm: 'n' | 'r' | 'w' | 'b';
}

export interface XenstoreClientOptions {
  /** Give up a request after this long (default 30 s). */
  timeoutMs?: number;
  /** Keep trying to reconnect for this long after xenstored goes away (default 60 s). */
  reconnectForMs?: number;
}

interface Pending {
  type: number;
  txId: number;
  payload: Buffer;
  resolve(p: Buffer): void;
  reject(e: XenError): void;
  deadline: number;
}

/** A transport carries whole messages both ways and tells when it (re)connects. */
interface Transport {
  send(bytes: Buffer): void;
  close(): void;
}

interface TransportEvents {
  message(hdr: XsHeader, payload: Buffer): void;
  /** Connected (again): anything in flight may be lost. */
  up(first: boolean): void;
  down(): void;
}

/* ---------- transports ---------- */

function unixTransport(path: string, ev: TransportEvents, reconnectForMs: number): Transport {
  let sock: Socket | null = null;
  let closed = false;
  let first = true;
  let buffered: Buffer = Buffer.alloc(0);
  let downSince = 0;
  const connect = () => {
    const s = createConnection(path);
    s.on('connect', () => {
      sock = s;
      downSince = 0;
      buffered = Buffer.alloc(0);
      ev.up(first);
      first = false;
    });
    s.on('data', (chunk: Buffer) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      let off = 0;
      while (buffered.length - off >= XSD_SOCKMSG_SIZE) {
        const hdr = decodeXsHeader(buffered, off);
        if (buffered.length - off - XSD_SOCKMSG_SIZE < hdr.len) break;
        const start = off + XSD_SOCKMSG_SIZE;
        ev.message(hdr, Buffer.from(buffered.subarray(start, start + hdr.len)));
        off = start + hdr.len;
      }
      buffered = buffered.subarray(off);
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (sock === s) {
        sock = null;
        ev.down();
      }
      if (closed) return;
      downSince ||= Date.now();
      if (Date.now() - downSince > reconnectForMs) return ev.down();
      setTimeout(connect, first ? 20 : 100).unref();
    });
  };
  connect();
  return {
    send(bytes) {
      sock?.write(bytes);
    },
    close() {
      closed = true;
      sock?.destroy();
    },
  };
}

function zmqTransport(endpoint: string, auth: { domid: number; secret: string }, ev: TransportEvents): Transport {
  const sock = new Dealer({ linger: 0, immediate: true, reconnectInterval: 50 });
  let queue: Buffer[] = [];
  let sending = false;
  let closed = false;
  let first = true;
  let authenticated = false;
  const authMsg = () => encodeXsMessage(XS_XENBOX_AUTH, 0, 0, Buffer.from(`${auth.domid}\0${auth.secret}\0`, 'latin1'));
  const flush = async () => {
    if (sending) return;
    sending = true;
    try {
      while (queue.length && !closed) {
        const frame = queue.length === 1 ? queue[0]! : Buffer.concat(queue);
        queue = [];
        await sock.send(frame);
      }
    } catch {
      // closed under us
    } finally {
      sending = false;
    }
  };
  const enqueue = (b: Buffer) => {
    queue.push(b);
    void flush();
  };
  // ZeroMQ reconnects by itself; a new connection means a new xenstored that does not know us yet.
  sock.events.on('disconnect', () => {
    authenticated = false;
    if (!closed) ev.down();
  });
  sock.events.on('connect', () => {
    if (closed) return;
    queue = [authMsg()];
    void flush();
  });
  void (async () => {
    try {
      for await (const [frame] of sock) {
        if (!frame) continue;
        let off = 0;
        while (frame.length - off >= XSD_SOCKMSG_SIZE) {
          const hdr = decodeXsHeader(frame, off);
          const start = off + XSD_SOCKMSG_SIZE;
          const payload = Buffer.from(frame.subarray(start, start + hdr.len));
          off = start + hdr.len;
          if (hdr.type === XS_XENBOX_AUTH || (hdr.type === XS.ERROR && hdr.reqId === 0 && !authenticated)) {
            if (hdr.type === XS_XENBOX_AUTH) {
              authenticated = true;
              ev.up(first);
              first = false;
            }
            continue;
          }
          ev.message(hdr, payload);
        }
      }
    } catch {
      // socket closed
    }
  })();
  sock.connect(endpoint);
  return {
    send(bytes) {
      if (authenticated) enqueue(bytes);
    },
    close() {
      closed = true;
      sock.close();
    },
  };
}

/* ---------- the client ---------- */

/** Requests that may be sent again after a reconnect without changing their meaning. */
const REPEATABLE = new Set<number>([XS.READ, XS.WRITE, XS.MKDIR, XS.RM, XS.DIRECTORY, XS.DIRECTORY_PART, XS.GET_PERMS, XS.SET_PERMS, XS.GET_DOMAIN_PATH, XS.IS_DOMAIN_INTRODUCED, XS.GET_FEATURE, XS.GET_QUOTA, XS.INTRODUCE, XS.SET_TARGET, XS.TRANSACTION_START]);

const str = (...parts: string[]) => Buffer.from(parts.map((p) => `${p}\0`).join(''), 'latin1');

export class XenstoreClient {
  private transport!: Transport;
  private readonly pending = new Map<number, Pending>();
  private readonly watches = new Map<string, XsWatch>();
  private nextReqId = 1;
  private nextToken = 1;
  private connected = false;
  private closed = false;
  /** Bumped on every reconnect: transactions from an older epoch are dead (EAGAIN). */
  private epoch = 0;
  private readonly txEpoch = new Map<number, number>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly upWaiters: Array<{ resolve(): void; reject(e: Error): void }> = [];
  readonly timeoutMs: number;

  private constructor(opts: XenstoreClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.sweeper = setInterval(() => this.expire(), 250);
    this.sweeper.unref();
  }

  /** dom0 tools: the Unix socket (XENSTORED_PATH-style path, or $RUN_DIR/xenstored/socket). */
  static async connectUnix(path: string, opts: XenstoreClientOptions = {}): Promise<XenstoreClient> {
    const c = new XenstoreClient(opts);
    c.transport = unixTransport(path, c.events(), opts.reconnectForMs ?? 60_000);
    await c.whenUp();
    return c;
  }

  static async connectRunDir(runDir: string, opts: XenstoreClientOptions = {}): Promise<XenstoreClient> {
    return XenstoreClient.connectUnix(runDirLayout(runDir).xenstoredSocket, opts);
  }

  /** A process domain: ZeroMQ, proving `domid` with the secret dom0 passed to INTRODUCE. */
  static async connectZmq(target: { runDir: string } | { endpoint: string }, auth: { domid: number; secret: string }, opts: XenstoreClientOptions = {}): Promise<XenstoreClient> {
    const c = new XenstoreClient(opts);
    const endpoint = 'endpoint' in target ? target.endpoint : ipcEndpoint(runDirLayout(target.runDir).xenstoredZmqSocket);
    c.transport = zmqTransport(endpoint, auth, c.events());
    await c.whenUp();
    return c;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.transport.close();
    for (const p of this.pending.values()) p.reject(new XenError('ENOTCONN', 'xenstore client closed'));
    this.pending.clear();
    for (const w of this.watches.values()) w.end();
    for (const u of this.upWaiters.splice(0)) u.reject(new XenError('ENOTCONN', 'xenstore client closed'));
  }

  /* ----- the operations ----- */

  async read(path: string, tx = 0): Promise<string> {
    return (await this.readBytes(path, tx)).toString('utf8');
  }

  readBytes(path: string, tx = 0): Promise<Buffer> {
    return this.request(XS.READ, str(path), tx);
  }

  /** READ, or undefined when the node does not exist. */
  async tryRead(path: string, tx = 0): Promise<string | undefined> {
    try {
      return await this.read(path, tx);
    } catch (e) {
      if (e instanceof XenError && e.errno === 'ENOENT') return undefined;
      throw e;
    }
  }

  async write(path: string, value: string | Uint8Array, tx = 0): Promise<void> {
    const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    await this.request(XS.WRITE, Buffer.concat([Buffer.from(`${path}\0`, 'latin1'), v]), tx);
  }

  async mkdir(path: string, tx = 0): Promise<void> {
    await this.request(XS.MKDIR, str(path), tx);
  }

  async rm(path: string, tx = 0): Promise<void> {
    await this.request(XS.RM, str(path), tx);
  }

  /** The children's names; falls back to DIRECTORY_PART for lists over 4096 bytes, as xs_directory() does. */
  async directory(path: string, tx = 0): Promise<string[]> {
    try {
      return splitXsStrings(await this.request(XS.DIRECTORY, str(path), tx));
    } catch (e) {
      if (!(e instanceof XenError) || e.errno !== 'E2BIG') throw e;
    }
    return this.directoryPart(path, tx);
  }

  private async directoryPart(path: string, tx: number): Promise<string[]> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const names: string[] = [];
      let offset = 0;
      let gen: string | undefined;
      for (;;) {
        const reply = await this.request(XS.DIRECTORY_PART, str(path, String(offset)), tx);
        const nul = reply.indexOf(0);
        const thisGen = reply.toString('latin1', 0, nul);
        if (gen !== undefined && thisGen !== gen) break;
        gen = thisGen;
        const body = reply.subarray(nul + 1);
        // The list ends with an empty name (an extra NUL).
        const parts = splitXsStrings(body);
        const done = body.length === 0 || (body.length >= 1 && body[body.length - 1] === 0 && (body.length === 1 || body[body.length - 2] === 0));
        for (const p of parts) if (p) names.push(p);
        offset += parts.filter((p) => p).reduce((n, p) => n + p.length + 1, 0);
        if (done) return names;
      }
    }
    throw new XenError('EAGAIN', `${path} kept changing while it was listed`);
  }

  async getPerms(path: string, tx = 0): Promise<XsPerm[]> {
    return splitXsStrings(await this.request(XS.GET_PERMS, str(path), tx)).map((p) => ({ perm: p.charAt(0) as XsPerm['perm'], id: Number(p.slice(1)) }));
  }

  async setPerms(path: string, perms: XsPerm[], tx = 0): Promise<void> {
    await this.request(XS.SET_PERMS, str(path, ...perms.map((p) => `${p.perm}${p.id}`)), tx);
  }

  async getDomainPath(domid: number): Promise<string> {
    return splitXsStrings(await this.request(XS.GET_DOMAIN_PATH, str(String(domid))))[0]!;
  }

  /** dom0: tell xenstored about a domain; `secret` lets a process domain authenticate on ZeroMQ. */
  async introduce(domid: number, opts: { gfn?: number; evtchn?: number; secret?: string } = {}): Promise<void> {
    const args = [String(domid), String(opts.gfn ?? 0), String(opts.evtchn ?? 0)];
    if (opts.secret !== undefined) args.push(opts.secret);
    await this.request(XS.INTRODUCE, str(...args));
  }

  async release(domid: number): Promise<void> {
    await this.request(XS.RELEASE, str(String(domid)));
  }

  async isDomainIntroduced(domid: number): Promise<boolean> {
    return (await this.request(XS.IS_DOMAIN_INTRODUCED, str(String(domid)))).toString('latin1', 0, 1) === 'T';
  }

  async setTarget(domid: number, target: number): Promise<void> {
    await this.request(XS.SET_TARGET, str(String(domid), String(target)));
  }

  async control(...args: string[]): Promise<string> {
    return (await this.request(XS.CONTROL, str(...args))).toString('latin1').replace(/\0$/, '');
  }

  /**
   * Watch `path` and below.  The watch fires once straight away (Xen's
   * rule); iterate it for events, `unwatch()` to stop.
   */
  async watch(path: string, token = `xb${this.nextToken++}`): Promise<XsWatch> {
    if (this.watches.has(token)) throw new XenError('EEXIST', `token ${token} in use on this client`);
    const w = new XsWatch(this, path, token);
    this.watches.set(token, w);
    try {
      await this.request(XS.WATCH, str(path, token));
    } catch (e) {
      this.watches.delete(token);
      throw e;
    }
    return w;
  }

  /** @internal used by XsWatch.unwatch() */
  async unwatchToken(w: XsWatch): Promise<void> {
    if (this.watches.get(w.token) !== w) return;
    this.watches.delete(w.token);
    w.end();
    if (!this.closed) await this.request(XS.UNWATCH, str(w.path, w.token));
  }

  async transactionStart(): Promise<number> {
    const id = Number(splitXsStrings(await this.request(XS.TRANSACTION_START, str('')))[0]);
    this.txEpoch.set(id, this.epoch);
    return id;
  }

  async transactionEnd(tx: number, commit: boolean): Promise<void> {
    try {
      await this.request(XS.TRANSACTION_END, str(commit ? 'T' : 'F'), tx);
    } finally {
      this.txEpoch.delete(tx);
    }
  }

  /**
   * Run `fn` in a transaction and commit it; on EAGAIN (a conflict, or
   * xenstored restarted) run it again, up to `retries` times.  If `fn`
   * throws, the transaction is abandoned and the error passed on.
   */
  async transaction<T>(fn: (t: XsTransaction) => Promise<T>, retries = 100): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const id = await this.transactionStart();
      const t = new XsTransaction(this, id);
      let result: T;
      try {
        result = await fn(t);
      } catch (e) {
        await this.transactionEnd(id, false).catch(() => {});
        if (e instanceof XenError && e.errno === 'EAGAIN' && attempt < retries) continue;
        throw e;
      }
      try {
        await this.transactionEnd(id, true);
        return result;
      } catch (e) {
        if (!(e instanceof XenError) || e.errno !== 'EAGAIN' || attempt >= retries) throw e;
      }
    }
  }

  /** Send any message and get its reply payload (errors arrive as XenError with the errno name). */
  request(type: number, payload: Buffer, tx = 0): Promise<Buffer> {
    if (this.closed) return Promise.reject(new XenError('ENOTCONN', 'xenstore client closed'));
    if (payload.length > XENSTORE_PAYLOAD_MAX) return Promise.reject(new XenError('E2BIG', `${xsTypeName(type)} payload of ${payload.length} bytes exceeds ${XENSTORE_PAYLOAD_MAX}`));
    if (tx !== 0 && this.txEpoch.has(tx) && this.txEpoch.get(tx) !== this.epoch) {
      return Promise.reject(new XenError('EAGAIN', 'xenstored restarted during the transaction'));
    }
    const reqId = this.nextReqId;
    this.nextReqId = this.nextReqId >= 0xfffffffe ? 1 : this.nextReqId + 1;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(reqId, { type, txId: tx, payload, resolve, reject, deadline: Date.now() + this.timeoutMs });
      if (this.connected) this.transport.send(encodeXsMessage(type, reqId, tx, payload));
    });
  }

  /* ----- plumbing ----- */

  private events(): TransportEvents {
    return {
      message: (hdr, payload) => this.onMessage(hdr, payload),
      up: (first) => this.onUp(first),
      down: () => {
        this.connected = false;
      },
    };
  }

  private whenUp(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.upWaiters.push({ resolve, reject });
      setTimeout(() => reject(new XenError('ECONNREFUSED', 'xenstored did not answer')), this.timeoutMs).unref();
    });
  }

  private onUp(first: boolean): void {
    this.connected = true;
    if (!first) this.resume();
    for (const u of this.upWaiters.splice(0)) u.resolve();
  }

  /** After a reconnect: new epoch, watches again, repeatable requests again, transactional ones EAGAIN. */
  private resume(): void {
    this.epoch++;
    const inFlight = [...this.pending];
    this.pending.clear();
    for (const w of this.watches.values()) {
      void this.request(XS.WATCH, str(w.path, w.token)).catch(() => {});
    }
    for (const [, p] of inFlight) {
      if (p.type === XS.WATCH || p.type === XS.UNWATCH) {
        // Re-registered above from the watch list.
        p.resolve(Buffer.from('OK\0'));
      } else if (p.txId !== 0 || p.type === XS.TRANSACTION_END || !REPEATABLE.has(p.type)) {
        p.reject(new XenError('EAGAIN', `xenstored restarted during ${xsTypeName(p.type)}`));
      } else {
        this.request(p.type, p.payload, 0).then(p.resolve, p.reject);
      }
    }
  }

  private onMessage(hdr: XsHeader, payload: Buffer): void {
    if (hdr.type === XS.WATCH_EVENT) {
      const [path, token] = splitXsStrings(payload);
      if (path !== undefined && token !== undefined) this.watches.get(token)?.push({ path, token });
      return;
    }
    const p = this.pending.get(hdr.reqId);
    if (!p) return;
    this.pending.delete(hdr.reqId);
    if (hdr.type === XS.ERROR) {
      const name = payload.toString('latin1').replace(/\0.*$/s, '');
      p.reject(new XenError(isXenErrno(name) ? name : 'EIO', `${xsTypeName(p.type)} ${splitXsStrings(p.payload)[0] ?? ''}`.trim()));
    } else {
      p.resolve(payload);
    }
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(id);
        p.reject(new XenError('ETIMEDOUT', `${xsTypeName(p.type)}: no reply from xenstored in ${this.timeoutMs} ms`));
      }
    }
  }
}

/** Operations bound to one transaction. */
export class XsTransaction {
  constructor(
    private readonly c: XenstoreClient,
    readonly id: number,
  ) {}
  read = (path: string) => this.c.read(path, this.id);
  readBytes = (path: string) => this.c.readBytes(path, this.id);
  tryRead = (path: string) => this.c.tryRead(path, this.id);
  write = (path: string, value: string | Uint8Array) => this.c.write(path, value, this.id);
  mkdir = (path: string) => this.c.mkdir(path, this.id);
  rm = (path: string) => this.c.rm(path, this.id);
  directory = (path: string) => this.c.directory(path, this.id);
  getPerms = (path: string) => this.c.getPerms(path, this.id);
  setPerms = (path: string, perms: XsPerm[]) => this.c.setPerms(path, perms, this.id);
}

/** A registered watch: an async stream of events. */
export class XsWatch implements AsyncIterable<XsWatchEvent> {
  private readonly queue: XsWatchEvent[] = [];
  private waiter: ((r: IteratorResult<XsWatchEvent>) => void) | null = null;
  private ended = false;

  constructor(
    private readonly client: XenstoreClient,
    readonly path: string,
    readonly token: string,
  ) {}

  /** @internal */
  push(ev: XsWatchEvent): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: ev, done: false });
    } else this.queue.push(ev);
  }

  /** @internal */
  end(): void {
    this.ended = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: undefined, done: true });
    }
  }

  /** The next event; rejects with ETIMEDOUT after `timeoutMs`. */
  next(timeoutMs = 10_000): Promise<XsWatchEvent> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(new XenError('ENOTCONN', 'watch ended'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = null;
        reject(new XenError('ETIMEDOUT', `no event on ${this.path} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (r) => {
        clearTimeout(t);
        if (r.done) reject(new XenError('ENOTCONN', 'watch ended'));
        else resolve(r.value);
      };
    });
  }

  /** Events already received and not yet taken. */
  drain(): XsWatchEvent[] {
    return this.queue.splice(0);
  }

  unwatch(): Promise<void> {
    return this.client.unwatchToken(this);
  }

  [Symbol.asyncIterator](): AsyncIterator<XsWatchEvent> {
    return {
      next: () => {
        const queued = this.queue.shift();
        if (queued) return Promise.resolve({ value: queued, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiter = resolve));
      },
      return: async () => {
        await this.unwatch();
        return { value: undefined, done: true };
      },
    };
  }
}
