/**
 * A blkif front end for process domains (tests, benchmarks, the HVM stub
 * domain's virtio-blk): Linux's drivers/block/xen-blkfront.c reduced to
 * what a userspace client needs.
 *
 * Handshake (talk_to_blkback / blkfront_connect): wait for the backend's
 * InitWait, grant a ring page, offer an unbound event channel, write
 * ring-ref / event-channel / protocol / feature-persistent, Initialised;
 * wait for Connected, read sectors / info / features, Connected.
 *
 * Data pages are this domain's own pages, granted once to the backend and
 * reused (what blkfront does with feature-persistent); a write's bytes are
 * written into them before the request is pushed, a read's are taken from
 * them once the response is in.  Requests larger than 11 pages use indirect
 * descriptors when the backend offers them.  Every in-flight request keeps
 * a shadow (blkfront's `shadow[]`): if the backend goes away (state
 * Closing/Closed/gone, its event channel closed, or the toolstack re-points
 * `backend`), the handshake is done again with whatever backend `backend`
 * then names, the grants are re-pointed at it and every request without a
 * response is issued again; callers just see their promise resolve later.
 *
 * `raw` lets a test put arbitrary bytes in ring slots and move req_prod (the
 * hostile front end of test/blkback-hostile.test.ts).
 */
import {
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_RING_ENTRY_SIZE,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_OKAY,
  BLKIF_SECTOR_SIZE,
  BLKIF_SECTORS_PER_PAGE,
  BLKIF_SEGMENT_SIZE,
  BLKIF_SEGS_PER_INDIRECT_FRAME,
  GTF_permit_access,
  RING_REQ_PROD_OFFSET,
  VDISK_CDROM,
  VDISK_READONLY,
  XEN_PAGE_SIZE,
  XenError,
  XenbusState,
  blkifOpName,
  decodeBlkifResponse,
  encodeBlkifDiscard,
  encodeBlkifIndirect,
  encodeBlkifRequest,
  encodeBlkifSegment,
  frontendPath,
  parseXenbusState,
  ringSlotOffset,
  type BlkifResponse,
  type DomId,
  type EvtchnPort,
  type XenbusStateValue,
} from '@xenbox/abi';
import { Evtchn } from './evtchn.js';
import { GrantTable, allocOwnPages, type OwnPage } from './gnttab.js';
import type { HypervisorConnection } from './hypervisor-connection.js';
import type { Logger } from './logger.js';
import { Mirrors, type MirrorPage } from './mirror.js';
import { FrontRing } from './ring.js';
import type { XenstoreClient, XsWatch } from './xenstore-client.js';
import { readXenbusState, readXenbusUint, writeXenbusKeys } from './xenbus.js';

/** The `protocol` we write: our layout is byte for byte the x86_64/Arm one (abi/blkif.ts). */
export const BLKFRONT_PROTOCOL = 'x86_64-abi';
/** Default cap on the pages one ring request carries (blkfront's max_indirect_segments default is 32). */
const DEFAULT_MAX_SEGMENTS = 32;

export interface BlkfrontOptions {
  hv: HypervisorConnection;
  xs: XenstoreClient;
  /** This (the front end's) domain. */
  domid: DomId;
  devid: number;
  log?: Logger;
  /** How long the first handshake may take (a reconnect waits as long as it must). */
  timeoutMs?: number;
  /** Most pages per ring request (used only when the backend offers indirect segments beyond 11). */
  maxSegments?: number;
  /** Offer feature-persistent (default yes: our data pages are reused grants anyway). */
  persistent?: boolean;
  /** Reconnect and re-issue when the backend goes away (default yes); without, in-flight requests fail with ENODEV. */
  reconnect?: boolean;
}

/** What the backend published at Connected. */
export interface BlkfrontInfo {
  backend: DomId;
  backendPath: string;
  sectors: number;
  sectorSize: number;
  info: number;
  readOnly: boolean;
  cdrom: boolean;
  flush: boolean;
  discard: boolean;
  persistent: boolean;
  /** Segments per request we use (11, or up to feature-max-indirect-segments). */
  segmentsPerRequest: number;
}

/** A data or descriptor page of ours, granted to the backend. */
interface GrantedPage {
  gfn: number;
  page: MirrorPage;
  ref: number;
}

/** An in-flight ring request (blkfront's struct blk_shadow). */
interface Shadow {
  id: bigint;
  operation: number;
  sector: number;
  sectors: number;
  /** A write's bytes until they are in its pages. */
  data: Uint8Array | null;
  /** Given when the request first goes on a ring, kept until its response. */
  pages: GrantedPage[] | null;
  indirect: GrantedPage | null;
  resolve(data: Uint8Array | null): void;
  reject(e: Error): void;
}

interface Link {
  backend: DomId;
  backendPath: string;
  ring: FrontRing;
  ringPage: OwnPage;
  ringRef: number;
  port: EvtchnPort;
  off: Array<() => void>;
}

/** A promise a watch or a timer settles: wait for "something changed". */
class Wakeup {
  private fire: (() => void) | null = null;
  private pending = false;
  poke(): void {
    this.pending = true;
    this.fire?.();
  }
  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((res) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(t);
        self.fire = null;
        self.pending = false;
        res();
      }
      this.fire = done;
    });
  }
}

export class Blkfront {
  readonly dir: string;
  private readonly log: Logger | undefined;
  private readonly evtchn: Evtchn;
  private readonly mirrors: Mirrors;
  private table!: GrantTable;
  private readonly freePages: GrantedPage[] = [];
  private readonly allPages: GrantedPage[] = [];
  private link: Link | null = null;
  private info_: BlkfrontInfo | null = null;
  private readonly shadows = new Map<bigint, Shadow>();
  /** Shadows not yet on the ring (waiting for a slot, or for a backend). */
  private readonly queue: Shadow[] = [];
  private nextId = 1n;
  private pumpScheduled = false;
  private growing = false;
  private draining = false;
  private drainAgain = false;
  private reconnecting: Promise<void> | null = null;
  private closed = false;
  private readonly wake = new Wakeup();
  private readonly watches: XsWatch[] = [];
  /** Handshakes done after the first (for tests and logs). */
  reconnects = 0;
  /** Requests issued again on a new ring after the backend went away. */
  reissued = 0;
  readonly raw: BlkfrontRaw;

  private constructor(private readonly o: BlkfrontOptions) {
    this.dir = frontendPath(o.domid, 'vbd', o.devid);
    this.log = o.log?.child({ blkfront: o.devid });
    this.evtchn = Evtchn.of(o.hv);
    this.mirrors = Mirrors.of(o.hv);
    this.raw = new BlkfrontRaw(this, o.hv);
  }

  /** Walk the handshake with the backend the toolstack named and return a connected device. */
  static async connect(o: BlkfrontOptions): Promise<Blkfront> {
    const f = new Blkfront(o);
    f.table = await GrantTable.of(o.hv);
    await f.watchFrontDir();
    await f.handshake(o.timeoutMs ?? 10_000);
    return f;
  }

  get info(): BlkfrontInfo {
    if (!this.info_) throw new XenError('ENOTCONN', `vbd ${this.o.devid}: not connected`);
    return this.info_;
  }

  get connected(): boolean {
    return this.link !== null && this.reconnecting === null;
  }

  /** Requests issued and not yet answered. */
  get inFlight(): number {
    return this.shadows.size;
  }

  // ------------------------------------------------------------------ I/O

  async read(sector: number, count: number): Promise<Uint8Array> {
    const parts = await Promise.all(this.chunks(sector, count).map(([s, n]) => this.submit(BLKIF_OP_READ, s, n, null)));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts as Uint8Array[]);
  }

  async write(sector: number, data: Uint8Array): Promise<void> {
    if (data.length % BLKIF_SECTOR_SIZE !== 0) throw new XenError('EINVAL', `write of ${data.length} bytes is not whole 512-byte sectors`);
    let pos = 0;
    const parts = this.chunks(sector, data.length / BLKIF_SECTOR_SIZE).map(([s, n]) => {
      const p = this.submit(BLKIF_OP_WRITE, s, n, data.subarray(pos, pos + n * BLKIF_SECTOR_SIZE));
      pos += n * BLKIF_SECTOR_SIZE;
      return p;
    });
    await Promise.all(parts);
  }

  /** BLKIF_OP_FLUSH_DISKCACHE with no segments: everything acknowledged so far is durable. */
  async flush(): Promise<void> {
    await this.submit(BLKIF_OP_FLUSH_DISKCACHE, 0, 0, null);
  }

  async discard(sector: number, count: number): Promise<void> {
    await this.submit(BLKIF_OP_DISCARD, sector, count, null);
  }

  /** Split a range into ring requests of at most segmentsPerRequest pages. */
  private chunks(sector: number, count: number): Array<[number, number]> {
    if (!Number.isSafeInteger(sector) || sector < 0 || !Number.isSafeInteger(count) || count <= 0) throw new XenError('EINVAL', `bad sector range ${sector}+${count}`);
    const max = this.info.segmentsPerRequest * BLKIF_SECTORS_PER_PAGE;
    const out: Array<[number, number]> = [];
    for (let s = sector, left = count; left > 0; ) {
      const n = Math.min(left, max);
      out.push([s, n]);
      s += n;
      left -= n;
    }
    return out;
  }

  private submit(operation: number, sector: number, sectors: number, data: Uint8Array | null): Promise<Uint8Array | null> {
    if (this.closed) return Promise.reject(new XenError('ENODEV', `vbd ${this.o.devid}: closed`));
    return new Promise((resolve, reject) => {
      const id = this.nextId;
      this.nextId = (this.nextId + 1n) & 0xffff_ffff_ffff_ffffn;
      const sh: Shadow = { id, operation, sector, sectors, data, pages: null, indirect: null, resolve, reject };
      this.shadows.set(id, sh);
      this.queue.push(sh);
      this.pump();
    });
  }

  /** Pages (data, and a descriptor page if indirect) a request needs on the ring. */
  private pagesNeeded(sh: Shadow): number {
    const n = sh.operation === BLKIF_OP_READ || sh.operation === BLKIF_OP_WRITE ? Math.ceil(sh.sectors / BLKIF_SECTORS_PER_PAGE) : 0;
    return n + (n > BLKIF_MAX_SEGMENTS_PER_REQUEST ? 1 : 0);
  }

  /**
   * Give a request its pages as it goes on the ring (so pages in use are
   * bounded by the ring, not by what callers queue); false when the pool
   * must grow first.  A write's bytes go into its pages here, once: a
   * re-issue finds them still there.
   */
  private attachPages(sh: Shadow): boolean {
    if (sh.pages) return true;
    const n = this.pagesNeeded(sh);
    if (this.freePages.length < n) {
      void this.growPool(n);
      return false;
    }
    const pages = this.freePages.splice(this.freePages.length - n, n);
    sh.indirect = n > BLKIF_MAX_SEGMENTS_PER_REQUEST ? pages.pop()! : null;
    sh.pages = pages;
    if (sh.data) for (let i = 0; i < pages.length; i++) pages[i]!.page.write(0, sh.data.subarray(i * XEN_PAGE_SIZE, (i + 1) * XEN_PAGE_SIZE));
    sh.data = null;
    return true;
  }

  /** Allocate and grant at least `n` more free pages (one growth at a time), then pump again. */
  private async growPool(n: number): Promise<void> {
    if (this.growing) return;
    this.growing = true;
    try {
      await this.takePages(n).then((pages) => this.freePages.push(...pages));
    } catch (e) {
      // Out of memory for pages: fail what waits for them rather than hang.
      const sh = this.queue[0];
      if (sh && !sh.pages) {
        this.queue.shift();
        this.shadows.delete(sh.id);
        sh.reject(e as Error);
      }
    } finally {
      this.growing = false;
    }
    this.pump();
  }

  /** Pages of ours granted to the backend, allocating and granting more when the free list runs out. */
  private async takePages(n: number): Promise<GrantedPage[]> {
    // A loop: other requests may take the pages we just added while we waited for more.
    while (this.freePages.length < n) {
      const want = Math.max(n - this.freePages.length, 64);
      const own = await allocOwnPages(this.o.hv, want);
      const backend = this.link?.backend ?? this.info_?.backend ?? 0;
      for (const p of own) {
        const g = { gfn: p.gfn, page: p.page, ref: this.table.grantAccess(backend, p.gfn) };
        this.allPages.push(g);
        this.freePages.push(g);
      }
      await this.table.publish();
    }
    return this.freePages.splice(this.freePages.length - n, n);
  }

  private releasePages(sh: Shadow): void {
    if (sh.pages) this.freePages.push(...sh.pages);
    if (sh.indirect) this.freePages.push(sh.indirect);
    sh.pages = null;
    sh.indirect = null;
  }

  /** The ring request for a shadow (again on a reissue: the pages still hold the data). */
  private encode(sh: Shadow): Uint8Array {
    const handle = this.o.devid & 0xffff;
    if (sh.operation === BLKIF_OP_DISCARD) return encodeBlkifDiscard({ handle, id: sh.id, sector: sh.sector, nrSectors: sh.sectors });
    const segs = (sh.pages ?? []).map((p, i) => ({ gref: p.ref, firstSect: 0, lastSect: Math.min(BLKIF_SECTORS_PER_PAGE, sh.sectors - i * BLKIF_SECTORS_PER_PAGE) - 1 }));
    if (!sh.indirect) return encodeBlkifRequest({ operation: sh.operation, handle, id: sh.id, sector: sh.sector, segments: segs });
    const desc = new Uint8Array(XEN_PAGE_SIZE);
    segs.forEach((s, i) => encodeBlkifSegment(desc, i * BLKIF_SEGMENT_SIZE, s));
    sh.indirect.page.write(0, desc.subarray(0, segs.length * BLKIF_SEGMENT_SIZE));
    return encodeBlkifIndirect({ indirectOp: sh.operation, nrSegments: segs.length, handle, id: sh.id, sector: sh.sector, indirectGrefs: [sh.indirect.ref] });
  }

  /** Move queued requests onto the ring while it has room, then push: once per turn of the event loop. */
  private pump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => this.pumpNow());
  }

  /**
   * RING_PUSH_REQUESTS and an unconditional notify: reading req_event for
   * the check-notify form needs a full barrier (a mirror sync, a round trip
   * per push); a notification the backend did not need costs one posted
   * message.  Evtchn.notify flushes the data pages and the ring page (the
   * entries, then req_prod) before the send, in order on one connection.
   */
  private pumpNow(): void {
    this.pumpScheduled = false;
    const link = this.link;
    if (!link) return;
    try {
      let queued = 0;
      while (this.queue.length && link.ring.freeRequests() > 0) {
        const sh = this.queue[0]!;
        if (!this.shadows.has(sh.id)) {
          this.queue.shift();
          continue;
        }
        if (!this.attachPages(sh)) break; // the pool grows, then pumps again
        this.queue.shift();
        link.ring.queueRequest(this.encode(sh));
        queued++;
      }
      if (queued === 0) return;
      link.ringPage.page.setU32(RING_REQ_PROD_OFFSET, link.ring.reqProdPvt);
      this.notify(link);
    } catch (e) {
      this.backendLost(`pushing requests failed: ${(e as Error).message}`, link);
    }
  }

  private notify(link: Link): void {
    try {
      this.evtchn.notify(link.port);
    } catch (e) {
      this.backendLost(`notify failed: ${(e as Error).message}`, link);
    }
  }

  /**
   * An event: the hypervisor refreshed every page of ours that changed just
   * before delivering it, so the responses visible now and the data the
   * backend copied for them are current together — take them at once, with
   * no barrier.  Then drain() for the final check.
   */
  private onEvent(link: Link): void {
    if (this.link !== link) {
      void this.drain();
      return;
    }
    try {
      const batch: BlkifResponse[] = [];
      while (link.ring.unconsumedResponses() > 0) batch.push(decodeBlkifResponse(link.ring.takeResponse()));
      if (batch.length) {
        this.complete(batch, true).catch((e: unknown) => this.backendLost(`taking responses failed: ${(e as Error).message}`, link));
        this.pump();
      }
    } catch (e) {
      this.backendLost(`taking responses failed: ${(e as Error).message}`, link);
      return;
    }
    void this.drain();
  }

  /** Take responses (blkif_interrupt), finishing with RING_FINAL_CHECK_FOR_RESPONSES. */
  private async drain(): Promise<void> {
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    let link = this.link;
    try {
      do {
        this.drainAgain = false;
        link = this.link;
        if (!link) return;
        for (;;) {
          const batch: BlkifResponse[] = [];
          while (link.ring.unconsumedResponses() > 0) batch.push(decodeBlkifResponse(link.ring.takeResponse()));
          if (batch.length) {
            await this.complete(batch);
            this.pump(); // slots freed
          }
          if (this.link !== link || !(await link.ring.finalCheckForResponses())) break;
        }
      } while (this.drainAgain);
    } catch (e) {
      this.backendLost(`taking responses failed: ${(e as Error).message}`, link);
    } finally {
      this.draining = false;
    }
  }

  private async complete(batch: BlkifResponse[], fresh = false): Promise<void> {
    const done: Array<[Shadow, BlkifResponse]> = [];
    for (const r of batch) {
      const sh = this.shadows.get(r.id);
      if (!sh) {
        this.raw.pushResponse(r);
        continue;
      }
      this.shadows.delete(r.id);
      done.push([sh, r]);
    }
    // A read's pages were written by the backend's grant copy: unless the responses were taken as an
    // event delivered them (`fresh`), our ring sync may have shown them before the pages' refresh.
    const readPages = done.filter(([sh, r]) => sh.operation === BLKIF_OP_READ && r.status === BLKIF_RSP_OKAY).flatMap(([sh]) => (sh.pages ?? []).map((p) => p.page));
    if (readPages.length && !fresh) await this.mirrors.sync(readPages);
    for (const [sh, r] of done) this.finish(sh, r);
  }

  private finish(sh: Shadow, r: BlkifResponse): void {
    const expectOp = sh.operation;
    if (r.status !== BLKIF_RSP_OKAY || r.operation !== expectOp) {
      this.releasePages(sh);
      const what = `${blkifOpName(sh.operation)} of sectors ${sh.sector}+${sh.sectors}`;
      if (r.operation !== expectOp) sh.reject(new XenError('EIO', `${what}: backend answered with ${blkifOpName(r.operation)}`));
      else if (r.status === BLKIF_RSP_EOPNOTSUPP) sh.reject(new XenError('EOPNOTSUPP', `${what}: not supported by the backend (BLKIF_RSP_EOPNOTSUPP)`));
      else sh.reject(new XenError('EIO', `${what}: failed (BLKIF_RSP_ERROR)`));
      return;
    }
    let data: Uint8Array | null = null;
    if (sh.operation === BLKIF_OP_READ) {
      data = new Uint8Array(sh.sectors * BLKIF_SECTOR_SIZE);
      const pages = sh.pages ?? [];
      for (let i = 0; i < pages.length; i++) data.set(pages[i]!.page.read(0, Math.min(XEN_PAGE_SIZE, data.length - i * XEN_PAGE_SIZE)), i * XEN_PAGE_SIZE);
    }
    this.releasePages(sh);
    sh.resolve(data);
  }

  // ------------------------------------------------------------------ xenbus

  /** Watch our own directory (the toolstack re-pointing `backend`) for the reconnect logic. */
  private async watchFrontDir(): Promise<void> {
    const w = await this.o.xs.watch(`${this.dir}/backend`);
    this.watches.push(w);
    void (async () => {
      for await (const _ of w) this.onBackendKeyChanged();
    })();
  }

  private onBackendKeyChanged(): void {
    this.wake.poke();
    const link = this.link;
    if (!link || this.reconnecting) return;
    void this.o.xs.tryRead(`${this.dir}/backend`).then((p) => {
      if (this.link === link && p !== undefined && p !== link.backendPath) this.backendLost(`the toolstack re-pointed backend to ${p}`, link);
    });
  }

  private async switchState(s: XenbusStateValue): Promise<void> {
    await this.o.xs.write(`${this.dir}/state`, String(s));
  }

  /** Read where our backend is, then wait until `ok` holds for its state (following `backend` if it changes). */
  private async waitBackend(ok: (s: XenbusStateValue) => boolean, deadline: number, pinned?: string): Promise<{ path: string; domid: DomId; state: XenbusStateValue }> {
    let watched: string | null = null;
    let w: XsWatch | null = null;
    try {
      for (;;) {
        if (this.closed) throw new XenError('ENODEV', `vbd ${this.o.devid}: closed`);
        const path = await this.o.xs.tryRead(`${this.dir}/backend`);
        const idText = await this.o.xs.tryRead(`${this.dir}/backend-id`);
        if (pinned !== undefined && path !== pinned) throw new XenError('ENODEV', `vbd ${this.o.devid}: backend re-pointed from ${pinned} to ${path ?? '(none)'} during the handshake`);
        if (path !== undefined && path !== watched) {
          await w?.unwatch().catch(() => undefined);
          w = await this.o.xs.watch(`${path}/state`);
          watched = path;
          void (async () => {
            for await (const _ of w!) this.wake.poke();
          })();
        }
        if (path !== undefined && idText !== undefined && /^\d+$/.test(idText)) {
          // A dead backend domain's directory may read EACCES on its way out: that is "gone".
          const state = parseXenbusState(await this.o.xs.tryRead(`${path}/state`).catch(() => undefined));
          if (ok(state)) return { path, domid: Number(idText), state };
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new XenError('ETIMEDOUT', `vbd ${this.o.devid}: backend ${path ?? '(none)'} not ready in time`);
        await this.wake.wait(Math.min(left, 500));
      }
    } finally {
      await w?.unwatch().catch(() => undefined);
    }
  }

  /** talk_to_blkback + blkfront_connect. */
  private async handshake(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const xs = this.o.xs;
    // Only a backend offering the device (InitWait) is talked to, as blkback_changed() does: a
    // Connected one is still serving an earlier ring (a stale directory of a dead backend).
    const be = await this.waitBackend((s) => s === XenbusState.InitWait, deadline);
    const backendPath = be.path;
    await this.repointGrants(be.domid);
    const [ringPage] = await allocOwnPages(this.o.hv, 1);
    const ring = FrontRing.init(ringPage!.page, BLKIF_RING_ENTRY_SIZE);
    const ringRef = this.table.grantAccess(be.domid, ringPage!.gfn);
    await this.table.publish();
    await ringPage!.page.sync();
    const port = await this.evtchn.allocUnbound(be.domid);
    const link: Link = { backend: be.domid, backendPath, ring, ringPage: ringPage!, ringRef, port, off: [] };
    link.off.push(this.evtchn.onEvent(port, () => this.onEvent(link)));
    link.off.push(this.evtchn.onPeerClosed(port, (why) => this.backendLost(`event channel closed: ${why}`, link)));
    try {
      await writeXenbusKeys(xs, this.dir, {
        'ring-ref': ringRef,
        'event-channel': port,
        protocol: BLKFRONT_PROTOCOL,
        'feature-persistent': this.o.persistent === false ? 0 : 1,
      });
      await this.switchState(XenbusState.Initialised);
      await this.waitBackend((s) => {
        if (s === XenbusState.Closing || s === XenbusState.Closed) throw new XenError('ENODEV', `backend ${backendPath} went to state ${s} during the handshake`);
        return s === XenbusState.Connected;
      }, deadline, backendPath);
      this.info_ = await this.readBackendInfo(be.domid, backendPath);
      this.link = link;
      link.off.push(await this.watchBackendState(link));
      await this.switchState(XenbusState.Connected);
      this.log?.info({ ...this.info_ }, 'connected');
    } catch (e) {
      for (const off of link.off) off();
      await this.evtchn.close(port).catch(() => undefined);
      throw e;
    }
  }

  private async readBackendInfo(backend: DomId, backendPath: string): Promise<BlkfrontInfo> {
    const xs = this.o.xs;
    const u = (k: string, d?: number) => readXenbusUint(xs, backendPath, k, d);
    const info = await u('info', 0);
    const maxIndirect = await u('feature-max-indirect-segments', 0);
    const cap = this.o.maxSegments ?? DEFAULT_MAX_SEGMENTS;
    return {
      backend,
      backendPath,
      sectors: await u('sectors'),
      sectorSize: await u('sector-size', BLKIF_SECTOR_SIZE),
      info,
      readOnly: (info & VDISK_READONLY) !== 0,
      cdrom: (info & VDISK_CDROM) !== 0,
      flush: (await u('feature-flush-cache', 0)) === 1,
      discard: (await u('feature-discard', 0)) === 1,
      persistent: (await u('feature-persistent', 0)) === 1,
      segmentsPerRequest: maxIndirect > BLKIF_MAX_SEGMENTS_PER_REQUEST ? Math.min(maxIndirect, cap, BLKIF_SEGS_PER_INDIRECT_FRAME) : BLKIF_MAX_SEGMENTS_PER_REQUEST,
    };
  }

  /** The backend leaving Connected while we use it means it is going away. */
  private async watchBackendState(link: Link): Promise<() => void> {
    const w = await this.o.xs.watch(`${link.backendPath}/state`);
    void (async () => {
      for await (const _ of w) {
        if (this.link !== link) return;
        const s = await readXenbusState(this.o.xs, link.backendPath).catch(() => XenbusState.Unknown);
        if (s !== XenbusState.Connected && this.link === link) this.backendLost(`backend state ${s}`, link);
      }
    })();
    return () => void w.unwatch().catch(() => undefined);
  }

  /** Our grants name the backend domain: a new backend domain gets them re-written in place. */
  private async repointGrants(backend: DomId): Promise<void> {
    for (const g of this.allPages) this.table.writeEntry(g.ref, backend, g.gfn, GTF_permit_access);
    if (this.allPages.length) await this.table.publish();
  }

  /** The backend is gone (or going): drop the ring, and reconnect to whichever backend comes. */
  private backendLost(why: string, link: Link | null): void {
    // Only the link in use can be lost: late news about an earlier one (a stale event, a failed
    // drain of the old ring) must not tear down its successor.
    if (this.closed || this.reconnecting || !link || link !== this.link) return;
    this.log?.warn({ why, inFlight: this.shadows.size }, 'backend lost: reconnecting');
    this.link = null;
    for (const off of link.off) off();
    if (this.o.reconnect === false) {
      void this.evtchn.close(link.port).catch(() => undefined);
      for (const sh of this.shadows.values()) sh.reject(new XenError('ENODEV', `vbd ${this.o.devid}: backend lost (${why})`));
      this.shadows.clear();
      this.queue.length = 0;
      return;
    }
    this.reconnecting = this.reconnect(link).finally(() => (this.reconnecting = null));
  }

  private async reconnect(old: Link): Promise<void> {
    await this.evtchn.close(old.port).catch(() => undefined);
    void this.table.endAccess(old.ringRef).catch(() => undefined);
    // Every request that was on the old ring goes again, in the order it was first issued.
    const again = [...this.shadows.values()].filter((sh) => !this.queue.includes(sh)).sort((a, b) => (a.id < b.id ? -1 : 1));
    this.queue.unshift(...again);
    this.reissued += again.length;
    for (;;) {
      if (this.closed) return;
      try {
        // Closed, then wait for the backend to let go (or vanish), then start over from Initialising.
        await this.switchState(XenbusState.Closed);
        await this.waitBackend((s) => s !== XenbusState.Connected && s !== XenbusState.Closing, Date.now() + 10_000).catch(() => undefined);
        await this.switchState(XenbusState.Initialising);
        await this.handshake(24 * 3600_000);
        this.reconnects++;
        this.log?.info({ reissue: again.length, backend: this.link?.backendPath }, 'reconnected');
        break;
      } catch (e) {
        if (e instanceof XenError && e.errno === 'ENOTCONN' && /xenstore client closed/.test(e.message)) {
          // Our xenstore connection is gone for good: nobody can answer.
          for (const sh of this.shadows.values()) sh.reject(new XenError('ENODEV', `vbd ${this.o.devid}: xenstore connection closed while reconnecting`));
          this.shadows.clear();
          this.queue.length = 0;
          return;
        }
        this.log?.warn({ err: (e as Error).message }, 'reconnect attempt failed; retrying');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    this.pump();
  }

  /** Closing -> Closed, and let go of the ring; outstanding requests fail with ENODEV. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake.poke();
    const link = this.link;
    this.link = null;
    for (const w of this.watches) await w.unwatch().catch(() => undefined);
    if (link) {
      for (const off of link.off) off();
      await this.switchState(XenbusState.Closing).catch(() => undefined);
      await this.switchState(XenbusState.Closed).catch(() => undefined);
      await this.evtchn.close(link.port).catch(() => undefined);
    }
    for (const sh of this.shadows.values()) sh.reject(new XenError('ENODEV', `vbd ${this.o.devid}: closed`));
    this.shadows.clear();
  }

  // ------------------------------------------------------------------ raw access (tests)

  /** @internal */
  rawLink(): Link {
    if (!this.link) throw new XenError('ENOTCONN', `vbd ${this.o.devid}: not connected`);
    return this.link;
  }

  /** @internal */
  rawGrant(n: number): Promise<GrantedPage[]> {
    return this.takePages(n);
  }

  /** @internal */
  rawNotify(): void {
    this.notify(this.rawLink());
  }

  /** @internal */
  rawDrain(): void {
    void this.drain();
  }
}

/**
 * Hostile access to the ring for tests: any bytes in any slot, any req_prod,
 * and the responses whose ids are not ours.
 */
export class BlkfrontRaw {
  private readonly responses: BlkifResponse[] = [];
  private waiter: (() => void) | null = null;

  constructor(
    private readonly f: Blkfront,
    private readonly hv: HypervisorConnection,
  ) {}

  /** Write `entry` (at most a slot) into the slot of ring index `idx`, without publishing it. */
  writeSlot(idx: number, entry: Uint8Array): void {
    const link = this.f.rawLink();
    const padded = new Uint8Array(BLKIF_RING_ENTRY_SIZE);
    padded.set(entry.subarray(0, BLKIF_RING_ENTRY_SIZE));
    link.ringPage.page.write(ringSlotOffset(idx, link.ring.size, BLKIF_RING_ENTRY_SIZE), padded);
  }

  /** Put requests in the next slots and publish them like a well-behaved front end would (push + notify). */
  async push(entries: Uint8Array[]): Promise<void> {
    const link = this.f.rawLink();
    for (const e of entries) link.ring.queueRequest(e);
    Mirrors.of(this.hv).flush();
    await link.ring.pushRequestsAndCheckNotify();
    this.f.rawNotify();
  }

  /** Set req_prod to any value (the front's private index follows) and notify. */
  async setReqProd(value: number): Promise<void> {
    const link = this.f.rawLink();
    link.ringPage.page.setU32(RING_REQ_PROD_OFFSET, value >>> 0);
    link.ring.reqProdPvt = value >>> 0;
    await link.ringPage.page.sync();
    this.f.rawNotify();
  }

  /** Pages of ours granted to the backend (for segments the test builds itself). */
  grantPages(n: number): Promise<Array<{ ref: number; page: MirrorPage }>> {
    return this.f.rawGrant(n);
  }

  get ring(): FrontRing {
    return this.f.rawLink().ring;
  }

  /** Wait for `n` responses that answer no request of ours (the test's raw ones). */
  async take(n: number, timeoutMs = 5000): Promise<BlkifResponse[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.responses.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new XenError('ETIMEDOUT', `got ${this.responses.length} of ${n} raw responses in ${timeoutMs} ms`);
      this.f.rawDrain();
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.min(left, 100));
        this.waiter = () => {
          clearTimeout(t);
          res();
        };
      });
    }
    return this.responses.splice(0, n);
  }

  /** @internal */
  pushResponse(r: BlkifResponse): void {
    this.responses.push(r);
    this.waiter?.();
  }
}
