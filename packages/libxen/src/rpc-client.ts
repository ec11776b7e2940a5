/**
 * The calling end of a xenbox connection: a ZeroMQ DEALER speaking the frame
 * format of @xenbox/abi (frame.ts).
 *
 * - Every call gets an id and a deadline; its promise settles with the reply,
 *   the peer's XenError, or ETIMEDOUT.
 * - Many calls may be in flight.  Calls issued while a send is pending are
 *   packed into the next frame, so a burst costs one frame, not one each.
 * - Messages pushed by the peer (events) are handed to listeners by name.
 */
import { Dealer } from 'zeromq';
import {
  frameBatches,
  POSTED_CALL_ID,
  CALL_ID_MAX,
  DEFAULT_CALL_TIMEOUT_MS,
  XenError,
  decodeParts,
  encodeParts,
  isErrReply,
  isEvent,
  isReply,
  type CallMsg,
  type ErrReplyMsg,
  type EventMsg,
  type Msg,
  type ReplyMsg,
} from '@xenbox/abi';
import type { Logger } from 'pino';
import type { CurveClientKeys } from './curve.js';

interface Pending {
  resolve(v: unknown): void;
  reject(e: XenError): void;
  deadline: number;
  op: string;
  onReply?: (v: unknown) => void;
}

export interface CallOptions {
  timeoutMs?: number;
  /**
   * Run with the successful reply synchronously, in the order messages
   * arrived: before any event that came after the reply in the same frame is
   * dispatched (a promise's continuation runs only after the whole frame).
   * Mirrors use it so a page snapshot in a reply is never applied after a
   * newer one pushed behind it.
   */
  onReply?: (v: unknown) => void;
}

/** A batch this big leaves at once rather than at the end of the event-loop turn. */
const EAGER_BATCH = 16;

export type EventListener = (data: unknown, ev: string) => void;

export interface RpcClientOptions {
  timeoutMs?: number;
  log?: Logger;
  /** Talk CURVE to a server with this public key (tcp endpoints). */
  curve?: CurveClientKeys;
}

export class RpcClient {
  private readonly sock = new Dealer({ linger: 0, immediate: true });
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Set<EventListener>>();
  private queue: Msg[] = [];
  private sending = false;
  private flushScheduled = false;
  private nextId = 1;
  private closed = false;
  private sweeper: NodeJS.Timeout | null = null;
  readonly timeoutMs: number;
  /** Frames and messages moved, for benchmarks and `xl`-style introspection. */
  readonly stats = { framesSent: 0, msgsSent: 0, framesReceived: 0, msgsReceived: 0 };
  private readonly log: Logger | undefined;

  constructor(readonly endpoint: string, opts: RpcClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.log = opts.log;
    if (opts.curve) {
      this.sock.curveServerKey = opts.curve.serverKey;
      this.sock.curvePublicKey = opts.curve.publicKey;
      this.sock.curveSecretKey = opts.curve.secretKey;
    }
  }

  connect(): void {
    this.sock.connect(this.endpoint);
    this.sweeper = setInterval(() => this.expireCalls(), Math.max(20, Math.min(250, this.timeoutMs / 4)));
    this.sweeper.unref();
    void this.receiveLoop();
  }

  /** Call `op` and wait for its reply. */
  call<R = unknown>(op: string, args: unknown = {}, opts: CallOptions = {}): Promise<R> {
    if (this.closed) return Promise.reject(new XenError('ENOTCONN', `${op}: connection to ${this.endpoint} is closed`));
    const id = this.allocId();
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, deadline: Date.now() + (opts.timeoutMs ?? this.timeoutMs), op, onReply: opts.onReply });
      this.enqueue({ id, op, args } satisfies CallMsg);
    });
  }

  /**
   * Post `op`: send it without waiting for (or getting) a reply, like Xen's
   * buffered ioreqs or a notification.  It travels in order with calls; if it
   * fails, the server logs the error.  Rejects only if the connection is closed.
   */
  post(op: string, args: unknown = {}): void {
    if (this.closed) throw new XenError('ENOTCONN', `${op}: connection to ${this.endpoint} is closed`);
    this.enqueue({ id: POSTED_CALL_ID, op, args } satisfies CallMsg);
  }

  /** Listen for events named `ev` pushed by the peer; returns an unsubscribe function. */
  on(ev: string, fn: EventListener): () => void {
    let set = this.listeners.get(ev);
    if (!set) this.listeners.set(ev, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  get inFlight(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new XenError('ENOTCONN', `${p.op}: connection closed before the reply`));
    }
    this.sock.close();
  }

  private allocId(): number {
    const id = this.nextId;
    this.nextId = id >= CALL_ID_MAX ? 1 : id + 1;
    return id;
  }

  /**
   * Queue a message.  A lone call leaves at once (after the current
   * synchronous code, so calls issued together still share a frame).  With
   * other calls in flight the flush waits for the end of this event-loop turn
   * (setImmediate), so the calls issued while handling the replies that
   * arrived in this turn share frames: batches grow with the load.  A batch
   * that reaches EAGER_BATCH leaves without waiting, so several frames are in
   * flight and the two processes work in parallel instead of taking turns.
   */
  private enqueue(msg: Msg): void {
    this.queue.push(msg);
    if (this.sending) return;
    if (this.queue.length >= EAGER_BATCH || this.pending.size <= 1) {
      this.sending = true;
      queueMicrotask(() => void this.drain());
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        if (!this.sending && this.queue.length) {
          this.sending = true;
          void this.drain();
        }
      });
    }
  }

  /** Send everything queued; whatever queues up meanwhile goes in the next frame. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length && !this.closed) {
        // Frames the peer accepts (frameBatches: message count and byte strings bounded).
        const batches = frameBatches(this.queue);
        this.queue = [];
        for (const batch of batches) {
          try {
            this.stats.framesSent++;
            this.stats.msgsSent += batch.length;
            await this.sock.send(encodeParts(batch.length === 1 ? batch[0]! : batch));
          } catch (e) {
            this.failBatch(batch, e);
          }
        }
      }
    } finally {
      this.sending = false;
    }
  }

  private failBatch(batch: Msg[], e: unknown): void {
    const why = e instanceof Error ? e.message : String(e);
    for (const m of batch) {
      if (!('op' in m)) continue;
      const p = this.pending.get(m.id);
      if (!p) continue;
      this.pending.delete(m.id);
      p.reject(new XenError('EIO', `${m.op}: send failed: ${why}`));
    }
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const parts of this.sock) this.dispatchFrame(parts);
    } catch (e) {
      if (!this.closed) this.log?.error({ err: e }, 'receive loop failed');
    }
  }

  private dispatchFrame(parts: Buffer[]): void {
    let msgs: Msg[];
    try {
      msgs = decodeParts(parts);
    } catch (e) {
      this.log?.warn({ err: e, endpoint: this.endpoint }, 'dropped a malformed frame from the peer');
      return;
    }
    this.stats.framesReceived++;
    this.stats.msgsReceived += msgs.length;
    for (const m of msgs) {
      if (isReply(m)) this.settle(m);
      else if (isEvent(m)) this.emit(m);
    }
  }

  private settle(m: ReplyMsg): void {
    if (m.id === null) {
      this.log?.warn({ err: (m as ErrReplyMsg).err }, 'peer reported an error it could not tie to a call');
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return; // timed out already
    this.pending.delete(m.id);
    if (isErrReply(m)) p.reject(XenError.fromValue(m.err));
    else {
      if (p.onReply) {
        try {
          p.onReply(m.ok);
        } catch (e) {
          this.log?.error({ err: e, op: p.op }, 'onReply threw');
        }
      }
      p.resolve(m.ok);
    }
  }

  private emit(m: EventMsg): void {
    const set = this.listeners.get(m.ev);
    if (!set || set.size === 0) return;
    for (const fn of set) {
      try {
        fn(m.data, m.ev);
      } catch (e) {
        this.log?.error({ err: e, ev: m.ev }, 'event listener threw');
      }
    }
  }

  private expireCalls(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(id);
      p.reject(new XenError('ETIMEDOUT', `${p.op}: no reply from ${this.endpoint} in time`));
    }
  }
}
