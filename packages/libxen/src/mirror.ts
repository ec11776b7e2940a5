/**
 * Pages a domain process holds copies of (DESIGN §4): its own pages and the
 * grants it mapped.  A MirrorPage is the process's view of one page:
 *
 * - reads see the local copy, which the hypervisor refreshes before it
 *   delivers an event to this process (`mirror.refresh`);
 * - writes land in the local copy and are remembered as dirty ranges; they
 *   reach the hypervisor with `flush()` — which Evtchn.notify() does for every
 *   page before it sends, so a backend never has to think about it;
 * - `sync()` is a full memory barrier (ring.h's mb()): flush, then fetch what
 *   others wrote meanwhile, in one round trip;
 * - once the page is gone (granter destroyed, grant unmapped, ballooned out)
 *   every access throws EFAULT.
 *
 * A refresh never undoes this process's own writes: ranges it wrote that the
 * hypervisor has not acknowledged yet are laid back over the new contents.
 * That is right because every field of a ring page has a single writer.
 */
import {
  XEN_PAGE_SIZE,
  XenError,
  type MirrorPageData,
  type MirrorRefreshEvent,
  type MirrorRevokedEvent,
  type MirrorWrite,
} from '@xenbox/abi';
import type { HypervisorConnection } from './hypervisor-connection.js';

interface Range {
  lo: number;
  hi: number;
}

/** Insert [lo, hi) into sorted disjoint ranges, merging overlaps and neighbours. */
function addRange(ranges: Range[], lo: number, hi: number): Range[] {
  const out: Range[] = [];
  let placed = false;
  for (const r of ranges) {
    if (r.hi < lo) out.push(r);
    else if (hi < r.lo) {
      if (!placed) out.push({ lo, hi });
      placed = true;
      out.push(r);
    } else {
      lo = Math.min(lo, r.lo);
      hi = Math.max(hi, r.hi);
    }
  }
  if (!placed) out.push({ lo, hi });
  return out;
}

export class MirrorPage {
  private readonly bytes: Uint8Array;
  private readonly dv: DataView;
  private dirty: Range[] = [];
  /** Flushed writes not yet acknowledged, oldest first. */
  private inflight: Array<{ seq: number; writes: MirrorWrite[] }> = [];
  private revokedWhy: string | null = null;

  constructor(
    private readonly owner: Mirrors,
    readonly mid: number,
    data: Uint8Array,
    readonly writable: boolean,
    /** What the page is, for messages: "d3 ref 9", "own gfn 0x2". */
    readonly label: string,
  ) {
    this.bytes = new Uint8Array(XEN_PAGE_SIZE);
    this.bytes.set(data.subarray(0, XEN_PAGE_SIZE));
    this.dv = new DataView(this.bytes.buffer);
  }

  get revoked(): boolean {
    return this.revokedWhy !== null;
  }

  private check(write: boolean): void {
    if (this.revokedWhy !== null) throw new XenError('EFAULT', `${this.label}: page no longer mapped (${this.revokedWhy})`);
    if (write && !this.writable) throw new XenError('EACCES', `${this.label}: mapped read-only`);
  }

  private checkSpan(offset: number, len: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + len > XEN_PAGE_SIZE) throw new XenError('EFAULT', `${this.label}: access at ${offset}+${len} is outside the page`);
  }

  u16(offset: number): number {
    this.check(false);
    this.checkSpan(offset, 2);
    return this.dv.getUint16(offset, true);
  }

  u32(offset: number): number {
    this.check(false);
    this.checkSpan(offset, 4);
    return this.dv.getUint32(offset, true);
  }

  /** A private copy of [offset, offset+len): later refreshes do not change it. */
  read(offset: number, len: number): Uint8Array {
    this.check(false);
    this.checkSpan(offset, len);
    return this.bytes.slice(offset, offset + len);
  }

  setU16(offset: number, v: number): void {
    this.check(true);
    this.checkSpan(offset, 2);
    this.dv.setUint16(offset, v, true);
    this.markDirty(offset, 2);
  }

  setU32(offset: number, v: number): void {
    this.check(true);
    this.checkSpan(offset, 4);
    this.dv.setUint32(offset, v >>> 0, true);
    this.markDirty(offset, 4);
  }

  write(offset: number, data: Uint8Array): void {
    this.check(true);
    this.checkSpan(offset, data.length);
    this.bytes.set(data, offset);
    this.markDirty(offset, data.length);
  }

  get isDirty(): boolean {
    return this.dirty.length > 0;
  }

  /** Publish local writes (posted; ordered before anything sent after it on this connection). */
  flush(): void {
    this.owner.flush([this]);
  }

  /** Full barrier: flush, then bring in what changed.  Throws EFAULT once revoked. */
  async sync(): Promise<void> {
    this.check(false);
    await this.owner.sync([this]);
    this.check(false);
  }

  private markDirty(offset: number, len: number): void {
    if (this.dirty.length === 0) this.owner.noteDirty(this);
    this.dirty = addRange(this.dirty, offset, offset + len);
  }

  // ---- used by Mirrors ----

  /** @internal Move dirty ranges to in-flight and return them as writes. */
  takeWrites(seq: number): MirrorWrite[] {
    if (this.dirty.length === 0 || this.revokedWhy !== null) return [];
    const writes = this.dirty.map((r) => ({ mid: this.mid, offset: r.lo, data: this.bytes.slice(r.lo, r.hi) }));
    this.dirty = [];
    this.inflight.push({ seq, writes });
    return writes;
  }

  /** @internal The hypervisor has applied every write up to `seq`. */
  acked(seq: number): void {
    while (this.inflight.length && this.inflight[0]!.seq <= seq) this.inflight.shift();
  }

  /** @internal New contents from the hypervisor, with our unacknowledged writes laid back on top. */
  refresh(data: Uint8Array): void {
    if (this.revokedWhy !== null) return;
    const keep = this.dirty.map((r) => ({ lo: r.lo, data: this.bytes.slice(r.lo, r.hi) }));
    this.bytes.set(data.subarray(0, XEN_PAGE_SIZE));
    for (const f of this.inflight) for (const w of f.writes) this.bytes.set(w.data, w.offset);
    for (const k of keep) this.bytes.set(k.data, k.lo);
  }

  /** @internal Set a field the hypervisor changed for us (after a cmpxchg), without marking it dirty. */
  poke(offset: number, data: Uint8Array): void {
    this.bytes.set(data, offset);
  }

  /** @internal */
  revoke(why: string): void {
    this.revokedWhy = why;
  }
}

const registries = new WeakMap<HypervisorConnection, Mirrors>();

/** Every mirror one connection holds; dispatches refreshes and revocations to them. */
export class Mirrors {
  private readonly pages = new Map<number, MirrorPage>();
  private seq = 0;
  private readonly revokeListeners = new Set<(page: MirrorPage, why: string) => void>();
  /** Pages written since their last flush: what a flush of "everything" looks at (not every page held). */
  private readonly dirtyPages = new Set<MirrorPage>();

  private constructor(private readonly hv: HypervisorConnection) {
    hv.on('mirror.refresh', (e: MirrorRefreshEvent) => this.applyRefresh(e.pages));
    hv.on('mirror.revoked', (e: MirrorRevokedEvent) => {
      for (const mid of e.mids) this.revoke(mid, e.reason);
    });
  }

  /** The registry of a connection (one per connection, shared by gnttab, evtchn and rings). */
  static of(hv: HypervisorConnection): Mirrors {
    let m = registries.get(hv);
    if (!m) registries.set(hv, (m = new Mirrors(hv)));
    return m;
  }

  adopt(mid: number, data: Uint8Array, writable: boolean, label: string): MirrorPage {
    const page = new MirrorPage(this, mid, data, writable, label);
    this.pages.set(mid, page);
    return page;
  }

  /** Forget a page (after unmap); later access fails with EFAULT. */
  drop(mid: number, why: string): void {
    this.pages.get(mid)?.revoke(why);
    this.pages.delete(mid);
  }

  onRevoked(fn: (page: MirrorPage, why: string) => void): () => void {
    this.revokeListeners.add(fn);
    return () => this.revokeListeners.delete(fn);
  }

  /** @internal A page got its first unflushed write. */
  noteDirty(page: MirrorPage): void {
    this.dirtyPages.add(page);
  }

  /** Post the dirty ranges of `pages` (default: every page with unflushed writes) in one call. */
  flush(pages: Iterable<MirrorPage> = this.dirtyPages): void {
    const seq = ++this.seq;
    const { writes, touched } = this.collect(pages, seq);
    if (writes.length === 0) return;
    // Acknowledged as the reply arrives, before any refresh behind it in the same frame: a refresh
    // must not lay back writes the hypervisor has applied (they could hide the peer's newer bytes).
    const ack = () => touched.forEach((p) => p.acked(seq));
    this.hv.call('mirror.flush', { writes }, { onReply: ack }).catch(ack); // a failed flush (page revoked) is not retried
  }

  /** Flush then refresh `pages`, one round trip. */
  async sync(pages: MirrorPage[]): Promise<void> {
    const seq = ++this.seq;
    const { writes, touched } = this.collect(pages, seq);
    try {
      // Applied as the reply arrives (see flush): a later refresh in the same frame then lands on top of
      // this older snapshot, not under it.
      await this.hv.call('mirror.sync', { writes, mids: pages.filter((p) => !p.revoked).map((p) => p.mid) }, {
        onReply: (reply) => {
          touched.forEach((p) => p.acked(seq));
          this.applyRefresh(reply.pages);
        },
      });
    } catch (e) {
      touched.forEach((p) => p.acked(seq));
      throw e;
    }
  }

  private collect(pages: Iterable<MirrorPage>, seq: number): { writes: MirrorWrite[]; touched: MirrorPage[] } {
    const writes: MirrorWrite[] = [];
    const touched: MirrorPage[] = [];
    for (const p of [...pages]) {
      this.dirtyPages.delete(p);
      const w = p.takeWrites(seq);
      if (w.length) {
        writes.push(...w);
        touched.push(p);
      }
    }
    return { writes, touched };
  }

  private applyRefresh(pages: MirrorPageData[]): void {
    for (const { mid, data } of pages) this.pages.get(mid)?.refresh(data);
  }

  private revoke(mid: number, why: string): void {
    const page = this.pages.get(mid);
    if (!page) return;
    page.revoke(why);
    this.pages.delete(mid);
    for (const fn of this.revokeListeners) fn(page, why);
  }
}
