/**
 * The serving end of a xenbox connection: a ZeroMQ ROUTER speaking the frame
 * format of @xenbox/abi.  Used by the hypervisor, the supervisor's control
 * socket and xenstored.
 *
 * Each peer (a DEALER identity) has an outbox.  Replies and events for one
 * peer that are ready at the same time leave in one frame.  A frame that
 * cannot be decoded gets an error reply with id nil and the server carries on
 * serving everyone; a frame larger than FRAME_MAX_BYTES is refused by ZeroMQ
 * itself (ZMQ_MAXMSGSIZE), which drops that peer's connection.
 */
import { Router } from 'zeromq';
import {
  frameBatches,
  POSTED_CALL_ID,
  FRAME_MAX_BYTES,
  decodeParts,
  encodeParts,
  isCall,
  toErrorValue,
  type CallMsg,
  type EventMsg,
  type Msg,
  type ReplyMsg,
} from '@xenbox/abi';
import type { Logger } from 'pino';
import { sendToRouterPeer } from './router-send.js';
import type { CurveKeyPair } from './curve.js';

/** One connected DEALER, with a slot for the server's own per-peer state. */
export interface Peer<S = unknown> {
  readonly key: string;
  readonly identity: Buffer;
  state: S | undefined;
}

/** Serve one call.  Return the reply value (or a promise of it); throw a XenError to fail it. */
export type CallHandler<S> = (peer: Peer<S>, call: CallMsg) => unknown;

export interface RpcServerOptions<S> {
  endpoint: string;
  log: Logger;
  handle: CallHandler<S>;
  /** Serve with CURVE (tcp endpoints); a ZapHandler must be running to check client keys. */
  curve?: CurveKeyPair;
  /** Told when a peer can no longer be reached (its DEALER went away). */
  onPeerGone?: (peer: Peer<S>) => void;
}

export class RpcServer<S = unknown> {
  private readonly sock: Router;
  private readonly peers = new Map<string, Peer<S>>();
  private readonly outboxes = new Map<string, Msg[]>();
  private sending = false;
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly opts: RpcServerOptions<S>) {
    this.log = opts.log;
    this.sock = new Router({ linger: 0, mandatory: true, sendTimeout: 0, maxMessageSize: FRAME_MAX_BYTES });
    if (opts.curve) {
      this.sock.curveServer = true;
      this.sock.curveSecretKey = opts.curve.secretKey;
      this.sock.curvePublicKey = opts.curve.publicKey;
    }
  }

  async bind(): Promise<void> {
    await this.sock.bind(this.opts.endpoint);
    void this.receiveLoop();
  }

  /** Push an event to one peer; it leaves with whatever else is ready for that peer. */
  push(peer: Peer<S>, ev: string, data: unknown): void {
    this.enqueue(peer, { ev, data } satisfies EventMsg);
  }

  /** Forget a peer (e.g. after its domain was destroyed); later frames from it start afresh. */
  forget(peer: Peer<S>): void {
    this.peers.delete(peer.key);
    this.outboxes.delete(peer.key);
  }

  peerByKey(key: string): Peer<S> | undefined {
    return this.peers.get(key);
  }

  get peerCount(): number {
    return this.peers.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }

  private peerFor(identity: Buffer): Peer<S> {
    const key = identity.toString('hex');
    let peer = this.peers.get(key);
    if (!peer) this.peers.set(key, (peer = { key, identity: Buffer.from(identity), state: undefined }));
    return peer;
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const parts of this.sock) {
        const identity = parts[0];
        if (!identity) continue;
        this.serveFrame(this.peerFor(identity), parts.slice(1));
      }
    } catch (e) {
      if (!this.closed) this.log.error({ err: e }, 'receive loop failed');
    }
  }

  /** The parts after the identity: the frame and its bulk part, if any (@xenbox/abi decodeParts). */
  private serveFrame(peer: Peer<S>, parts: Buffer[]): void {
    let msgs: Msg[];
    try {
      msgs = decodeParts(parts);
    } catch (e) {
      this.log.warn({ peer: peer.key, parts: parts.length, bytes: parts[0]?.length ?? 0, err: toErrorValue(e) }, 'malformed frame');
      this.enqueue(peer, { id: null, err: toErrorValue(e) });
      return;
    }
    for (const m of msgs) {
      if (isCall(m)) this.serveCall(peer, m);
      else this.enqueue(peer, { id: null, err: { errno: 'EINVAL', message: 'only calls may be sent to this endpoint' } });
    }
  }

  private serveCall(peer: Peer<S>, call: CallMsg): void {
    let result: unknown;
    try {
      result = this.opts.handle(peer, call);
    } catch (e) {
      this.reply(peer, call, e, true);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (v) => this.reply(peer, call, v, false),
        (e) => this.reply(peer, call, e, true),
      );
    } else {
      this.reply(peer, call, result, false);
    }
  }

  private reply(peer: Peer<S>, call: CallMsg, value: unknown, failed: boolean): void {
    if (call.id === POSTED_CALL_ID) {
      // A posted call wants no reply; its failure is still never swallowed.
      if (failed) this.log.warn({ peer: peer.key, op: call.op, err: toErrorValue(value) }, 'posted call failed');
      return;
    }
    const msg: ReplyMsg = failed ? { id: call.id, err: toErrorValue(value) } : { id: call.id, ok: value ?? null };
    if (failed && toErrorValue(value).errno === 'EIO') this.log.error({ op: call.op, err: value }, 'call failed unexpectedly');
    this.enqueue(peer, msg);
  }

  private enqueue(peer: Peer<S>, msg: Msg): void {
    if (this.closed) return;
    let box = this.outboxes.get(peer.key);
    if (!box) this.outboxes.set(peer.key, (box = []));
    box.push(msg);
    // Let the rest of the current frame's calls add their replies first; the
    // clients batch their calls (see RpcClient.enqueue), so replies follow suit.
    if (!this.sending) {
      this.sending = true;
      queueMicrotask(() => void this.drain());
    }
  }

  private async drain(): Promise<void> {
    try {
      while (this.outboxes.size && !this.closed) {
        for (const [key, box] of this.outboxes) {
          this.outboxes.delete(key);
          const peer = this.peers.get(key);
          if (!peer) continue;
          for (const chunk of frameBatches(box)) {
            if (!(await this.sendTo(peer, chunk))) break;
          }
        }
      }
    } finally {
      this.sending = false;
    }
  }

  private async sendTo(peer: Peer<S>, msgs: Msg[]): Promise<boolean> {
    const r = await sendToRouterPeer(this.sock, peer.identity, encodeParts(msgs.length === 1 ? msgs[0]! : msgs), () => this.closed);
    if (r === 'sent') return true;
    if (r !== 'closed') {
      this.log.info({ peer: peer.key, err: r.gone }, 'peer unreachable; dropping it');
      this.peers.delete(peer.key);
      this.opts.onPeerGone?.(peer);
    }
    return false;
  }
}
