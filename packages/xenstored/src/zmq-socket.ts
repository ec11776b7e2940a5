/**
 * xenstored's ZeroMQ ROUTER for process domains (DESIGN §3, §8):
 * ipc://$RUN_DIR/xenstored/xs.sock.  Frames carry the same byte-exact
 * messages as the Unix socket, whole and back to back (so a client can
 * pipeline many requests in one frame and gets its replies batched the same
 * way).  A peer is nobody until it sends XS_XENBOX_AUTH <domid> <secret>
 * with the secret dom0 gave xenstored in INTRODUCE (docs/xenstored.md);
 * until then every request gets EACCES.
 */
import { Router } from 'zeromq';
import { XS, XS_XENBOX_AUTH, XenError, splitXsStrings, type XsHeader } from '@xenbox/abi';
import { sendToRouterPeer } from '@xenbox/libxen';
import { Connection } from './connection.js';
import { splitFrame } from './framing.js';
import type { Xenstored } from './xenstored.js';

/** Biggest frame accepted: 64 whole maximum-size messages. */
const FRAME_MAX = 64 * (16 + 4096);
interface Peer {
  identity: Buffer;
  conn: Connection;
  outbox: Buffer[];
}

export class ZmqListener {
  private readonly sock = new Router({ linger: 0, mandatory: true, sendTimeout: 0, maxMessageSize: FRAME_MAX });
  private readonly peers = new Map<string, Peer>();
  private readonly ready = new Set<Peer>();
  private draining = false;
  private closed = false;

  constructor(
    private readonly xs: Xenstored,
    readonly endpoint: string,
    /** dom0's secret (for dom0 tools that prefer ZeroMQ to the Unix socket). */
    private readonly dom0Secret: string,
  ) {}

  async listen(): Promise<void> {
    await this.sock.bind(this.endpoint);
    void this.receiveLoop();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sock.close();
  }

  private peerFor(identity: Buffer): Peer {
    const key = identity.toString('hex');
    let peer = this.peers.get(key);
    if (peer && !peer.conn.closed) return peer;
    const p: Peer = { identity: Buffer.from(identity), outbox: [], conn: undefined as unknown as Connection };
    p.conn = new Connection(
      'zmq',
      undefined,
      (bytes) => this.queue(p, bytes),
      (reason) => {
        this.xs.log.info({ peer: key, reason }, 'dropping ZeroMQ peer');
        this.peers.delete(key);
      },
    );
    this.xs.attach(p.conn);
    this.peers.set(key, p);
    return (peer = p);
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const parts of this.sock) {
        const [identity, frame] = parts;
        if (!identity) continue;
        const peer = this.peerFor(identity);
        if (!frame || parts.length !== 2) continue;
        this.serveFrame(peer, frame);
      }
    } catch (e) {
      if (!this.closed) this.xs.log.error({ err: e }, 'ZeroMQ receive loop failed');
    }
  }

  private serveFrame(peer: Peer, frame: Buffer): void {
    const { messages, error } = splitFrame(frame);
    for (const m of messages) {
      if (peer.conn.closed) return;
      if (m.hdr.type === XS_XENBOX_AUTH) this.authenticate(peer, m.hdr, m.payload);
      else if (!peer.conn.authenticated) this.xs.sendError(peer.conn, m.hdr, new XenError('EACCES', 'authenticate first (XS_XENBOX_AUTH)'));
      else this.xs.handle(peer.conn, m.hdr, m.payload);
    }
    if (error) {
      this.xs.log.warn({ why: error.why }, 'malformed ZeroMQ frame');
      this.xs.sendError(peer.conn, error.hdr ?? { type: XS.ERROR, reqId: 0, txId: 0, len: 0 }, new XenError('EINVAL', error.why));
    }
  }

  private authenticate(peer: Peer, hdr: XsHeader, payload: Buffer): void {
    const [domText, secret] = splitXsStrings(payload);
    const domid = domText && /^[0-9]{1,5}$/.test(domText) ? Number(domText) : NaN;
    if (peer.conn.authenticated) {
      this.xs.sendError(peer.conn, hdr, new XenError('EISCONN', 'already authenticated'));
    } else if (Number.isNaN(domid) || secret === undefined || !this.xs.authenticate(peer.conn, domid, secret, this.dom0Secret)) {
      this.xs.log.warn({ domid: domText?.slice(0, 8) }, 'ZeroMQ peer failed to authenticate');
      this.xs.sendError(peer.conn, hdr, new XenError('EACCES', 'wrong domain or secret'));
    } else {
      this.xs.log.info({ domid }, 'ZeroMQ peer authenticated');
      peer.conn.send(XS_XENBOX_AUTH, hdr, Buffer.from('OK\0'));
    }
  }

  private queue(peer: Peer, bytes: Buffer): void {
    peer.outbox.push(bytes);
    this.ready.add(peer);
    if (!this.draining) {
      this.draining = true;
      // Let the rest of the frame's requests add their replies first.
      setImmediate(() => void this.drain());
    }
  }

  private async drain(): Promise<void> {
    try {
      while (this.ready.size && !this.closed) {
        const batch = [...this.ready];
        this.ready.clear();
        for (const peer of batch) {
          while (peer.outbox.length) {
            const frame = this.takeFrame(peer);
            if (!(await this.sendTo(peer, frame))) break;
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /** As many queued messages as fit in one frame. */
  private takeFrame(peer: Peer): Buffer {
    let n = 0;
    let bytes = 0;
    while (n < peer.outbox.length && bytes + peer.outbox[n]!.length <= FRAME_MAX) bytes += peer.outbox[n++]!.length;
    const parts = peer.outbox.splice(0, Math.max(1, n));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private async sendTo(peer: Peer, frame: Buffer): Promise<boolean> {
    const r = await sendToRouterPeer(this.sock, peer.identity, frame, () => this.closed);
    if (r === 'sent') return true;
    if (r !== 'closed') {
      this.xs.log.info({ err: r.gone }, 'ZeroMQ peer unreachable; forgetting it');
      peer.outbox.length = 0;
      this.peers.delete(peer.identity.toString('hex'));
      this.xs.detach(peer.conn);
    }
    return false;
  }
}
