/**
 * A guest's connection to xenstored: `struct xenstore_domain_interface`
 * (xen/include/public/io/xs_wire.h, docs/misc/xenstore-ring.txt) in the
 * page the guest granted with GNTTAB_RESERVED_XENSTORE, served as C
 * xenstored's domain.c (readchn/writechn) and io.c (handle_input/
 * handle_output) do:
 *
 * - requests are read out of req[] between req_cons and req_prod, a header
 *   then exactly its payload, in as many pieces as they come (both may wrap
 *   around the ring and arrive across several events), and served as that
 *   domain by the same request machinery as every other connection;
 * - replies and watch events queue per connection and go into rsp[] only
 *   into space the guest has released (rsp_cons): a slow guest is waited
 *   for, never overrun; the guest's event after it consumes brings more;
 * - while `outstanding` replies are queued and unsent (the per-domain quota,
 *   20 by default), no further request is read: the guest's own backlog is
 *   its brake, as C xenstored's domain->nboutstanding is;
 * - indexes claiming more than a ring's worth (prod - cons > 1024) set
 *   `error` = XENSTORE_ERROR_RINGIDX, a header announcing more than 4096
 *   bytes sets XENSTORE_ERROR_PROTO, and the connection is ignored from then
 *   on (core.c ignore_connection()), never a crash, other connections
 *   untouched;
 * - `connection` = XENSTORE_RECONNECT resets the connection (watches,
 *   transactions, partial messages, the indexes) and answers
 *   XENSTORE_CONNECTED (xenstore-ring.txt "Connection state").
 *
 * The page is a mirror (DESIGN §4) refreshed before each event; reading a
 * producer index from one refresh and the bytes below it only after the
 * next (`io.barrier()`) is the mirror's rmb(): a refresh copies the page
 * while the guest's vCPU may be writing it, so within one copy a new
 * req_prod could sit beside stale request bytes.
 */
import {
  XENSTORE_CONNECTED,
  XENSTORE_ERROR_NONE,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
  XENSTORE_PAYLOAD_MAX,
  XENSTORE_RECONNECT,
  XENSTORE_RING,
  XENSTORE_RING_SIZE,
  XSD_SOCKMSG_SIZE,
  XS,
  decodeXsHeader,
  type XsHeader,
} from '@xenbox/abi';
import { Pump, type Logger } from '@xenbox/libxen';
import { Connection } from './connection.js';
import type { Xenstored } from './xenstored.js';

/** The view of the ring page the connection needs (a libxen MirrorPage is one). */
export interface RingPage {
  u32(offset: number): number;
  setU32(offset: number, value: number): void;
  read(offset: number, len: number): Uint8Array;
  write(offset: number, data: Uint8Array): void;
}

/** How the connection reaches the guest: the page, a read barrier, the event channel. */
export interface RingIo {
  page: RingPage;
  /** Make the page current (flush our writes, fetch the guest's): rmb()/mb(). */
  barrier(): Promise<void>;
  /** Signal the guest (publishing our writes first). */
  notify(): void;
  /** Unmap and unbind (RELEASE, re-INTRODUCE, the guest's death). */
  teardown(): Promise<void>;
}

const R = XENSTORE_RING;
const MASK = XENSTORE_RING_SIZE - 1;

/** Ring indexes are free-running u32: distance from cons to prod. */
const distance = (cons: number, prod: number): number => (prod - cons) >>> 0;

interface Queued {
  bytes: Buffer;
  /** A reply (counts against `outstanding` until it is in the ring), not a watch event. */
  reply: boolean;
}

export class RingConnection {
  readonly conn: Connection;
  private readonly out: Queued[] = [];
  /** Bytes of out[0] already in the ring. */
  private outHead = 0;
  private outBytes = 0;
  private unsentReplies = 0;
  /** The request being read: its header bytes, then its payload. */
  private head: Buffer[] = [];
  private headLen = 0;
  private hdr: XsHeader | null = null;
  private body: Buffer[] = [];
  private bodyLen = 0;
  private readonly pumper = new Pump(() => this.pass());
  /** Inside a synchronous round: what gets queued now is written at its end. */
  private inStep = false;
  /** Why we stopped serving (set error): only RELEASE or re-INTRODUCE end it. */
  ignored: string | null = null;
  private closed = false;
  private droppedEvents = 0;
  /** Requests served, for tests and `xenstore-control`. */
  served = 0;

  constructor(
    private readonly xs: Xenstored,
    readonly domid: number,
    readonly gfn: number,
    readonly port: number,
    private readonly io: RingIo,
    private readonly log: Logger,
  ) {
    this.conn = new Connection(
      'ring',
      domid,
      (bytes) => this.queue(bytes),
      (reason) => void this.close(reason),
    );
  }

  /** Advertise what we serve and start (domain.c introduce_domain(): server_features, then serve what is there). */
  start(features: number): void {
    this.io.page.setU32(R.SERVER_FEATURES, features);
    this.io.notify(); // publishes the features (the toolstack waits for them before it unpauses the guest)
    this.xs.attach(this.conn);
    this.pump();
  }

  /** RELEASE, re-INTRODUCE or the guest's death: stop and unmap. */
  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.xs.detach(this.conn);
    this.log.info({ dom: this.domid, reason }, 'ring connection closed');
    await this.io.teardown().catch((e: unknown) => this.log.warn({ dom: this.domid, err: (e as Error).message }, 'unmapping the ring failed'));
  }

  /** An event from the guest (or more output to send): serve until nothing is left to do. */
  pump(): void {
    if (this.closed || this.ignored || this.inStep) return;
    this.pumper.kick();
  }

  /** One pass (Pump): false once the connection is closed or ignored. */
  private async pass(): Promise<boolean> {
    try {
      const page = this.io.page;
      // What the guest published as of the last refresh; the bytes below it are trusted after the barrier.
      const reqProd = page.u32(R.REQ_PROD);
      const reconnect = page.u32(R.CONNECTION) === XENSTORE_RECONNECT;
      // Only bytes to read need the barrier; an event that just frees rsp space (rsp_cons is safe to use stale) does not.
      if (reconnect || reqProd !== page.u32(R.REQ_CONS)) await this.io.barrier();
      if (this.closed || this.ignored) return false;
      this.inStep = true;
      if (reconnect) this.reconnect();
      else this.step(reqProd);
    } catch (e) {
      // The page went away under us (EFAULT from the mirror): the guest is gone.
      void this.close(`ring page gone: ${(e as Error).message}`);
      return false;
    } finally {
      this.inStep = false;
    }
    return !this.closed && !this.ignored;
  }

  /** One round: take requests, put replies, tell the guest if anything moved. */
  private step(reqProd: number): void {
    const page = this.io.page;
    const reqCons0 = page.u32(R.REQ_CONS);
    const rspProd0 = page.u32(R.RSP_PROD);
    this.readRequests(reqProd);
    if (this.ignored || this.closed) return;
    this.writeResponses();
    if (this.ignored || this.closed) return;
    if (page.u32(R.REQ_CONS) !== reqCons0 || page.u32(R.RSP_PROD) !== rspProd0) this.io.notify();
  }

  // ---------------------------------------------------------------- input

  private readRequests(reqProd: number): void {
    const page = this.io.page;
    let cons = page.u32(R.REQ_CONS);
    if (distance(cons, reqProd) > XENSTORE_RING_SIZE) return this.ignore(XENSTORE_ERROR_RINGIDX, `req_prod ${reqProd} is more than a ring ahead of req_cons ${cons}`);
    const start = cons;
    for (;;) {
      if (this.hdr === null && this.headLen === 0 && this.overOutstanding()) break;
      const need = this.hdr === null ? XSD_SOCKMSG_SIZE - this.headLen : this.hdr.len - this.bodyLen;
      if (need > 0) {
        const avail = distance(cons, reqProd);
        if (avail === 0) break;
        const n = Math.min(need, avail, XENSTORE_RING_SIZE - (cons & MASK));
        const chunk = Buffer.from(page.read(R.REQ + (cons & MASK), n));
        cons = (cons + n) >>> 0;
        if (this.hdr === null) {
          this.head.push(chunk);
          this.headLen += n;
          if (this.headLen < XSD_SOCKMSG_SIZE) continue;
          this.hdr = decodeXsHeader(Buffer.concat(this.head, this.headLen));
          this.head = [];
          this.headLen = 0;
          if (this.hdr.len > XENSTORE_PAYLOAD_MAX) {
            page.setU32(R.REQ_CONS, cons);
            return this.ignore(XENSTORE_ERROR_PROTO, `a header announces ${this.hdr.len} payload bytes (at most ${XENSTORE_PAYLOAD_MAX})`);
          }
          if (this.hdr.len > 0) continue;
        } else {
          this.body.push(chunk);
          this.bodyLen += n;
          if (this.bodyLen < this.hdr.len) continue;
        }
      }
      this.dispatch();
      if (this.closed || this.ignored) break;
    }
    if (cons !== start) page.setU32(R.REQ_CONS, cons);
  }

  private dispatch(): void {
    const hdr = this.hdr!;
    const payload = Buffer.concat(this.body, this.bodyLen);
    this.hdr = null;
    this.body = [];
    this.bodyLen = 0;
    this.served++;
    this.xs.handle(this.conn, hdr, payload);
  }

  /** domain.c domain_can_read(): not while `outstanding` replies wait for ring space. */
  private overOutstanding(): boolean {
    const limit = this.xs.quotas.limit(this.domid, 'outstanding');
    return limit > 0 && this.unsentReplies >= limit;
  }

  // ---------------------------------------------------------------- output

  private queue(bytes: Buffer): void {
    const reply = bytes.readUInt32LE(0) !== XS.WATCH_EVENT;
    if (!reply) {
      // A guest that never reads must not grow our memory without bound: over its memory quota, events are dropped.
      const limit = this.xs.quotas.limit(this.domid, 'memory');
      if (limit > 0 && this.outBytes + bytes.length > limit) {
        if (this.droppedEvents++ === 0) this.log.warn({ dom: this.domid, queued: this.outBytes }, 'guest does not read its ring: dropping watch events');
        return;
      }
    }
    this.out.push({ bytes, reply });
    this.outBytes += bytes.length;
    if (reply) this.unsentReplies++;
    // Replies made while serving requests go out at the end of that round; events from elsewhere need a round of their own.
    this.pump();
  }

  private writeResponses(): void {
    const page = this.io.page;
    const cons = page.u32(R.RSP_CONS);
    let prod = page.u32(R.RSP_PROD);
    if (distance(cons, prod) > XENSTORE_RING_SIZE) return this.ignore(XENSTORE_ERROR_RINGIDX, `rsp_cons ${cons} is more than a ring behind rsp_prod ${prod}`);
    const start = prod;
    while (this.out.length) {
      const space = XENSTORE_RING_SIZE - distance(cons, prod);
      if (space === 0) break;
      const m = this.out[0]!;
      const n = Math.min(space, XENSTORE_RING_SIZE - (prod & MASK), m.bytes.length - this.outHead);
      page.write(R.RSP + (prod & MASK), m.bytes.subarray(this.outHead, this.outHead + n));
      prod = (prod + n) >>> 0;
      this.outHead += n;
      if (this.outHead < m.bytes.length) continue;
      this.out.shift();
      this.outHead = 0;
      this.outBytes -= m.bytes.length;
      if (m.reply) this.unsentReplies--;
    }
    if (prod !== start) page.setU32(R.RSP_PROD, prod);
  }

  // ---------------------------------------------------------------- errors and reconnection

  /** core.c ignore_connection(): say why in `error`, drop what is buffered, serve nothing more. */
  private ignore(error: number, why: string): void {
    this.ignored = why;
    this.log.warn({ dom: this.domid, error, why }, 'ignoring a guest ring: protocol violation');
    this.dropBuffered();
    this.xs.watches.forget(this.conn);
    this.conn.transactions.clear();
    try {
      this.io.page.setU32(R.ERROR, error);
      this.io.notify();
    } catch {
      // the page is gone already
    }
  }

  /** xenstore-ring.txt: discard partial packets, watches and transactions, reset the counters, CONNECTED, signal. */
  private reconnect(): void {
    this.log.info({ dom: this.domid }, 'guest asked to reconnect its ring');
    this.dropBuffered();
    this.xs.watches.forget(this.conn);
    this.conn.transactions.clear();
    const page = this.io.page;
    for (const off of [R.REQ_CONS, R.REQ_PROD, R.RSP_CONS, R.RSP_PROD]) page.setU32(off, 0);
    page.setU32(R.ERROR, XENSTORE_ERROR_NONE);
    page.setU32(R.CONNECTION, XENSTORE_CONNECTED);
    this.io.notify();
  }

  private dropBuffered(): void {
    this.out.length = 0;
    this.outHead = 0;
    this.outBytes = 0;
    this.unsentReplies = 0;
    this.head = [];
    this.headLen = 0;
    this.hdr = null;
    this.body = [];
    this.bodyLen = 0;
  }

  /** For tests and logs: queued output not yet in the ring. */
  get queuedBytes(): number {
    return this.outBytes;
  }
}
