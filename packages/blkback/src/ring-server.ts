/**
 * Serving one connected blkif ring: Linux xen-blkback's xen_blkif_schedule()
 * + __do_block_io_op() + make_response() (drivers/block/xen-blkback/
 * blkback.c), on a ring page held as a mirror.
 *
 * On an event: take every request (each copied out of the page once and
 * decoded from the copy), check it (request-check.ts), start it, and go on
 * taking — requests run concurrently, up to the ring's 32.  Data moves by
 * grant copy (copy-batch.ts).  Responses are queued as requests finish and
 * pushed once per turn of the event loop (see push() on why the notify is
 * unconditional); before sleeping the ring is re-checked with
 * RING_FINAL_CHECK_FOR_REQUESTS.
 *
 * A front end that lies about req_prod (more than a ring's worth ahead)
 * makes BackRing throw EIO: the ring is abandoned (`onBroken`), as Linux
 * halts a ring on RING_REQUEST_PROD_OVERFLOW.
 */
import {
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_RING_ENTRY_SIZE,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  BLKIF_SECTOR_SIZE,
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTST,
  RING_RSP_PROD_OFFSET,
  XEN_PAGE_SIZE,
  blkifOpName,
  decodeBlkifRequest,
  encodeBlkifResponse,
  gntstMessage,
  type DomId,
  type EvtchnPort,
  type GnttabCopy,
} from '@xenbox/abi';
import { BackRing, type Evtchn, type HypervisorConnection, type Logger, type MirrorPage } from '@xenbox/libxen';

import type { BlockImage } from './image/block-image.js';
import type { CopyBatch } from './copy-batch.js';
import type { PersistentGrants } from './persistent-grants.js';
import { checkIndirectSegments, checkRequest, type RequestPlan, type SegmentCopy, type VbdLimits } from './request-check.js';
import type { VbdStats } from './vbd-stats.js';

/** Refusals logged in full per ring before the log is thinned to one in REFUSAL_LOG_EVERY. */
const REFUSALS_LOGGED = 20;
const REFUSAL_LOG_EVERY = 1000;

export interface RingServerOptions {
  hv: HypervisorConnection;
  evtchn: Evtchn;
  batch: CopyBatch;
  frontend: DomId;
  page: MirrorPage;
  port: EvtchnPort;
  /** null for an empty cdrom drive: every data request is out of range. */
  image: BlockImage | null;
  limits: VbdLimits;
  stats: VbdStats;
  log: Logger;
  /** Mapped grants kept for reuse, when the front end offered feature-persistent; null = grant copy only. */
  persistent: PersistentGrants | null;
  /** The ring is unusable (a lying front end, or the page went away). */
  onBroken(e: Error): void;
  /**
   * The first responses are being pushed; `requestsBefore` requests were
   * taken off the ring by then — after a backend restart, what blkfront
   * issued again (supervisor restart metrics).
   */
  onFirstResponse?(requestsBefore: number): void;
}

/** A request's outcome: the status, and why when it failed. */
interface Outcome {
  status: number;
  why?: string;
}

class RequestFailed extends Error {}

export class RingServer {
  private readonly ring: BackRing;
  private readonly inflight = new Map<bigint, Promise<void>>();
  private serving = false;
  private kicked = false;
  private pushScheduled = false;
  private eventKick = false;
  private stopped = false;
  private refusals = 0;
  /** Requests taken off the ring, and whether a response was pushed yet (onFirstResponse). */
  private taken = 0;
  private answered = false;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly o: RingServerOptions) {
    this.ring = BackRing.attach(o.page, BLKIF_RING_ENTRY_SIZE);
  }

  start(): void {
    this.unsubscribe = this.o.evtchn.onEvent(this.o.port, () => {
      this.eventKick = !this.serving;
      this.kick();
    });
    this.kick();
  }

  /** Stop taking requests and wait for those in flight to finish (their responses are dropped if the ring is gone). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    await Promise.allSettled([...this.inflight.values()]);
  }

  /** Unmap the persistent grants (after stop()). */
  async releaseGrants(): Promise<void> {
    await this.o.persistent?.unmapAll();
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  /** Where the ring stands, for the stats log line. */
  snapshot(): Record<string, unknown> {
    const p = this.o.page;
    const shared = p.revoked ? null : { reqProd: p.u32(0), reqEvent: p.u32(4), rspProd: p.u32(8), rspEvent: p.u32(12) };
    return { reqCons: this.ring.reqCons, rspProdPvt: this.ring.rspProdPvt, persistentGrants: this.o.persistent?.size ?? 0, shared, inFlight: this.inflight.size, serving: this.serving, stopped: this.stopped };
  }

  /** Serve the ring until it is empty and the final check says so (one pass at a time). */
  kick(): void {
    if (this.stopped) return;
    if (this.serving) {
      this.kicked = true;
      return;
    }
    void this.serve();
  }

  private async serve(): Promise<void> {
    // `serving` drops in the same synchronous run as the last look at `kicked` (a .finally() on the
    // promise would leave a window where an event's kick is lost).
    this.serving = true;
    try {
      do {
        this.kicked = false;
        // Requests taken before the first await came with the event that woke us: the hypervisor
        // refreshed our mirrors (ring and persistently mapped data pages) together just before it.
        let fresh = this.eventKick;
        this.eventKick = false;
        for (;;) {
          while (!this.stopped && this.ring.unconsumedRequests() > 0) this.dispatch(this.ring.takeRequest(), fresh);
          if (this.stopped || !(await this.ring.finalCheckForRequests())) break;
          fresh = false;
        }
      } while (this.kicked && !this.stopped);
    } catch (e) {
      this.broken(e as Error);
    } finally {
      this.serving = false;
    }
  }

  private broken(e: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.o.onBroken(e);
  }

  /** One request, from the private copy of its slot. */
  private dispatch(entry: Uint8Array, fresh: boolean): void {
    this.taken++;
    const req = decodeBlkifRequest(entry);
    const plan = checkRequest(req, this.o.limits);
    this.count(plan);
    if (this.inflight.has(req.id)) {
      // The id still names a request we are serving: answer this one with an error, leave the first alone.
      this.o.stats.ooReq++;
      this.refuse(plan.id, plan.rspOp, `id ${req.id} is already in flight`, BLKIF_RSP_ERROR);
      return;
    }
    if (plan.kind === 'refuse') {
      this.refuse(plan.id, plan.rspOp, plan.why, plan.status);
      return;
    }
    const done = this.execute(plan, fresh).then(
      (o) => this.finish(plan.id, plan.rspOp, o),
      (e: unknown) => this.finish(plan.id, plan.rspOp, { status: BLKIF_RSP_ERROR, why: (e as Error).message }),
    );
    this.inflight.set(req.id, done);
  }

  private count(plan: RequestPlan): void {
    const s = this.o.stats;
    if (plan.rspOp === BLKIF_OP_READ) s.rdReq++;
    else if (plan.rspOp === BLKIF_OP_WRITE) s.wrReq++;
    else if (plan.kind === 'flush') s.fReq++;
    else if (plan.kind === 'discard') s.dsReq++;
  }

  /**
   * Run a checked request.  Until its first await this runs inside dispatch(),
   * so with `fresh` a persistently mapped page is read as the event left it.
   */
  private async execute(plan: RequestPlan, fresh: boolean): Promise<Outcome> {
    switch (plan.kind) {
      case 'read':
        return this.read(plan.sector, plan.bytes, plan.segments);
      case 'write':
        return this.write(plan.sector, plan.segments, fresh);
      case 'flush': {
        // A barrier drains what was started before it (Linux: drain_io for WRITE_BARRIER).
        if (plan.barrier) await Promise.allSettled([...this.inflight.values()]);
        if (plan.then) {
          const w = await this.execute(plan.then, fresh && !plan.barrier);
          if (w.status !== BLKIF_RSP_OKAY) return w;
        }
        await this.image().flush();
        return { status: BLKIF_RSP_OKAY };
      }
      case 'discard':
        await this.image().discard(plan.sector * BLKIF_SECTOR_SIZE, plan.nrSectors * BLKIF_SECTOR_SIZE);
        return { status: BLKIF_RSP_OKAY };
      case 'indirect': {
        const mapped = fresh ? this.o.persistent?.pagesIfMapped(plan.pages) : null;
        const pages = mapped ? mapped.map((p) => p.read(0, XEN_PAGE_SIZE)) : await this.fetchIndirect(plan.pages);
        const inner = checkIndirectSegments(plan, pages, this.o.limits);
        if (inner.kind === 'refuse') return { status: inner.status, why: inner.why };
        return this.execute(inner, fresh && mapped !== null && mapped !== undefined);
      }
      case 'refuse':
        return { status: plan.status, why: plan.why };
    }
  }

  private image(): BlockImage {
    if (!this.o.image) throw new RequestFailed('no medium in the drive');
    return this.o.image;
  }

  /** The descriptor pages of an indirect request, copied (not mapped): the front cannot change them under us. */
  private async fetchIndirect(grefs: number[]): Promise<Uint8Array[]> {
    const mapped = await this.o.persistent?.pages(grefs, true);
    if (mapped && 'status' in mapped) throw new RequestFailed(`indirect page (gref ${mapped.gref}): ${gntstMessage(mapped.status)}`);
    if (mapped) return mapped.map((p) => p.read(0, XEN_PAGE_SIZE));
    const results = await this.o.batch.copy(grefs.map((ref) => this.fromGrant({ gref: ref, offset: 0, len: XEN_PAGE_SIZE })));
    return results.map((r, i) => {
      if (r.status !== GNTST.okay || !r.data) throw new RequestFailed(`indirect page ${i} (gref ${grefs[i]}): ${gntstMessage(r.status)}`);
      return r.data;
    });
  }

  private fromGrant(s: SegmentCopy): GnttabCopy {
    return { source: { ref: s.gref, domid: this.o.frontend, offset: s.offset }, dest: { inline: true, domid: DOMID_SELF, offset: 0 }, len: s.len, flags: GNTCOPY_source_gref };
  }

  private async write(sector: number, segs: SegmentCopy[], fresh: boolean): Promise<Outcome> {
    const image = this.image();
    const pg = this.o.persistent;
    if (pg) {
      const grefs = segs.map((s) => s.gref);
      const mapped = (fresh ? pg.pagesIfMapped(grefs) : null) ?? (await pg.pages(grefs, true));
      if (mapped && 'status' in mapped) return { status: BLKIF_RSP_ERROR, why: `gref ${mapped.gref}: ${gntstMessage(mapped.status)}` };
      if (mapped) {
        const data = Buffer.concat(segs.map((s, i) => mapped[i]!.read(s.offset, s.len)));
        await image.write(sector * BLKIF_SECTOR_SIZE, data);
        this.o.stats.wrSect += data.length / BLKIF_SECTOR_SIZE;
        return { status: BLKIF_RSP_OKAY };
      }
    }
    const results = await this.o.batch.copy(segs.map((s) => this.fromGrant(s)));
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      if (r.status !== GNTST.okay || !r.data) return { status: BLKIF_RSP_ERROR, why: `segment ${i} (gref ${segs[i]!.gref}): ${gntstMessage(r.status)}` };
      chunks.push(r.data);
    }
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    await image.write(sector * BLKIF_SECTOR_SIZE, data);
    this.o.stats.wrSect += data.length / BLKIF_SECTOR_SIZE;
    return { status: BLKIF_RSP_OKAY };
  }

  private async read(sector: number, bytes: number, segs: SegmentCopy[]): Promise<Outcome> {
    const data = await this.image().read(sector * BLKIF_SECTOR_SIZE, bytes);
    const pg = this.o.persistent;
    if (pg) {
      const grefs = segs.map((s) => s.gref);
      const mapped = pg.pagesIfMapped(grefs) ?? (await pg.pages(grefs, false));
      if (mapped && 'status' in mapped) return { status: BLKIF_RSP_ERROR, why: `gref ${mapped.gref}: ${gntstMessage(mapped.status)}` };
      if (mapped) {
        // Into the mirrors; push() publishes them with rsp_prod, in one flush before the notify.
        let at = 0;
        segs.forEach((s, i) => {
          mapped[i]!.write(s.offset, data.subarray(at, at + s.len));
          at += s.len;
        });
        this.o.stats.rdSect += bytes / BLKIF_SECTOR_SIZE;
        return { status: BLKIF_RSP_OKAY };
      }
    }
    let pos = 0;
    const ops: GnttabCopy[] = segs.map((s) => {
      const op: GnttabCopy = { source: { bytes: data.subarray(pos, pos + s.len), domid: DOMID_SELF, offset: 0 }, dest: { ref: s.gref, domid: this.o.frontend, offset: s.offset }, len: s.len, flags: GNTCOPY_dest_gref };
      pos += s.len;
      return op;
    });
    const results = await this.o.batch.copy(ops);
    const bad = results.findIndex((r) => r.status !== GNTST.okay);
    if (bad >= 0) return { status: BLKIF_RSP_ERROR, why: `segment ${bad} (gref ${segs[bad]!.gref}): ${gntstMessage(results[bad]!.status)}` };
    this.o.stats.rdSect += bytes / BLKIF_SECTOR_SIZE;
    return { status: BLKIF_RSP_OKAY };
  }

  private refuse(id: bigint, op: number, why: string, status: number): void {
    this.noteFailure(id, op, why, status);
    this.respond(id, op, status);
  }

  private finish(id: bigint, op: number, o: Outcome): void {
    this.inflight.delete(id);
    if (o.status !== BLKIF_RSP_OKAY) this.noteFailure(id, op, o.why ?? 'failed', o.status);
    if (!this.stopped) this.respond(id, op, o.status);
  }

  private noteFailure(id: bigint, op: number, why: string, status: number): void {
    this.o.stats.errors++;
    this.refusals++;
    if (this.refusals <= REFUSALS_LOGGED || this.refusals % REFUSAL_LOG_EVERY === 0) {
      this.o.log.warn({ id: id.toString(), op: blkifOpName(op), status, refusals: this.refusals }, `request refused: ${why}`);
    }
  }

  /** make_response(): queue it; the push happens once per turn of the event loop, for all queued. */
  private respond(id: bigint, operation: number, status: number): void {
    try {
      this.ring.queueResponse(encodeBlkifResponse({ id, operation, status }));
    } catch (e) {
      this.broken(e as Error);
      return;
    }
    if (this.pushScheduled) return;
    this.pushScheduled = true;
    setImmediate(() => this.push());
  }

  /**
   * RING_PUSH_RESPONSES, then notify unconditionally (ring.h allows a
   * notification the front end did not ask for).  The check-notify form
   * needs a full barrier — a mirror sync, one round trip per push — to read
   * rsp_event; an unconditional notify is a posted message, and the front
   * end gets one event per batch of responses either way while it is busy.
   * Evtchn.notify flushes the ring page (the entries, then rsp_prod) before
   * the send, on the same connection.
   */
  private push(): void {
    this.pushScheduled = false;
    if (this.stopped) return;
    try {
      this.o.page.setU32(RING_RSP_PROD_OFFSET, this.ring.rspProdPvt);
    } catch (e) {
      this.broken(e as Error);
      return;
    }
    this.notify();
    if (!this.answered) {
      this.answered = true;
      this.o.onFirstResponse?.(this.taken);
    }
  }

  private notify(): void {
    try {
      this.o.evtchn.notify(this.o.port);
    } catch (e) {
      this.broken(e as Error);
    }
  }
}
