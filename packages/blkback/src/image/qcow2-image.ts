/**
 * qcow2 images (QEMU docs/interop/qcow2.txt): versions 2 and 3, 16-bit
 * refcounts, raw or qcow2 backing files, no encryption.
 *
 * Reads and in-place writes (a cluster already allocated with refcount 1) run
 * concurrently without a lock.  Anything that changes metadata holds the
 * metadata mutex, in two short steps around the data write:
 *
 *   plan   (locked)   create missing L2 tables, allocate host clusters in
 *                     memory, mark the guest clusters pending
 *   data   (unlocked) write the new clusters, holes filled with the old
 *                     contents (COW) or zeros
 *   commit (locked)   refcounts, then L2 entries, then free what was replaced
 *
 * which is QEMU's order (data, refcount, L2, L1): a crash in between leaks a
 * cluster at worst, never maps a guest cluster to garbage or to a free host
 * cluster.  Commits of concurrent writes are batched into one pass.
 * A read of a cluster being allocated sees the old mapping until the commit,
 * so it returns old or new data, never a half-written cluster.  Host clusters
 * freed by a discard or a COW are not reused until every I/O that started
 * before the free has finished (so a late write through an old mapping cannot
 * land in someone else's new cluster).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { XenError } from '@xenbox/abi';
import type { BlockImage, ImageFormat } from './block-image.js';
import { SECTOR_SIZE, checkRange, checkWritable } from './image-bounds.js';
import { imageIoError } from './image-errors.js';
import { preadFull, pwriteFull, settleAll } from './file-io.js';
import { Mutex } from './async-mutex.js';
import {
  HDR_AUTOCLEAR_FEATURES,
  INCOMPAT_COMPRESSION_TYPE,
  QCOW2_V3_MIN_HEADER_LENGTH,
  fixedMetadataAt,
  parseQcow2Header,
  type Qcow2Header,
} from './qcow2-header.js';
import {
  clearL2Entry,
  readCompressedDescriptor,
  readL1Entry,
  readL2Entry,
  writeL1Entry,
  writeL2Normal,
  writeL2Zero,
  type L2Entry,
} from './qcow2-entry.js';
import { Qcow2Refcounts } from './qcow2-refcount.js';
import { L2Cache } from './qcow2-l2-cache.js';
import { MetaWriter, type MetaOp } from './qcow2-meta-writer.js';
import { compressedClusters, decodeCompressed, readCompressedCluster } from './qcow2-compressed.js';
import { MAX_BACKING_DEPTH, parseBackingSpec } from './qcow2-backing.js';
import { DirtyTables } from './qcow2-dirty-tables.js';
import { checkL1, checkWritableHeader } from './qcow2-open-checks.js';

/** How a qcow2 image may open its backing file. */
export interface BackingContext {
  /** False when the format was probed: then a backing file is refused. */
  backingAllowed: boolean;
  /** How many images up the chain this one is. */
  depth: number;
  openBacking: (path: string, format: ImageFormat | undefined) => Promise<BlockImage>;
}

export async function openQcow2Image(path: string, readOnly: boolean, ctx: BackingContext): Promise<BlockImage> {
  let fh: FileHandle;
  try {
    fh = await open(path, readOnly ? 'r' : 'r+');
  } catch (e) {
    throw imageIoError(path, 'cannot open qcow2 image', e);
  }
  try {
    return await Qcow2Image.open(path, fh, readOnly, ctx);
  } catch (e) {
    await fh.close();
    throw imageIoError(path, 'cannot open qcow2 image', e);
  }
}

/** One guest cluster's share of a request. */
interface Seg {
  /** Guest cluster index. */
  g: number;
  /** Byte offset inside the cluster. */
  inCluster: number;
  /** Byte offset inside the request's buffer. */
  at: number;
  n: number;
  e: L2Entry;
}

/** A run of guest clusters getting new host clusters. */
interface Allocation {
  segs: Seg[];
  /** Host byte offset of each seg's new cluster. */
  hosts: number[];
  /** First cluster and count of the run taken from the allocator (the rest reuse preallocated clusters). */
  fresh: Extent;
}

type Plan = { kind: 'wait'; until: Promise<void> } | { kind: 'retry' } | { kind: 'go'; alloc: Allocation; done: () => void };

interface Extent {
  first: number;
  count: number;
}

const UNALLOCATED: L2Entry = { kind: 'unallocated', offset: 0, copied: false };

class Qcow2Image implements BlockImage {
  readonly format = 'qcow2' as const;
  readonly size: number;
  private readonly cs: number;
  private readonly l2Entries: number;
  private readonly l2: L2Cache;
  private readonly mutex = new Mutex();
  private readonly meta: MetaWriter;
  /** Guest clusters being allocated -> settles when the allocation is committed or undone. */
  private readonly pending = new Map<number, Promise<void>>();
  /** Sequence numbers of I/O in flight, oldest first (Set keeps insertion order). */
  private readonly inflight = new Set<number>();
  private opSeq = 0;
  /** End of the host clusters that may hold data: the file at open, grown by our allocations. */
  private hostLimit: number;
  private commitQueue: Array<{ alloc: Allocation; resolve: () => void; reject: (e: unknown) => void }> = [];
  private committing = false;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly h: Qcow2Header,
    private readonly l1: Buffer,
    private readonly refcounts: Qcow2Refcounts | undefined,
    readonly readOnly: boolean,
    fileSize: number,
    private readonly backing: BlockImage | undefined,
  ) {
    this.hostLimit = fileSize;
    this.size = h.size - (h.size % SECTOR_SIZE);
    this.cs = h.clusterSize;
    this.l2Entries = h.clusterSize / 8;
    this.l2 = new L2Cache(fh, h.clusterSize);
    this.meta = new MetaWriter(fh);
    if (refcounts) {
      refcounts.oldestInflight = () => this.oldestInflight();
      refcounts.writtenBatches = () => this.meta.writtenBatches;
    }
  }

  static async open(path: string, fh: FileHandle, readOnly: boolean, ctx: BackingContext): Promise<Qcow2Image> {
    const fileSize = (await fh.stat()).size;
    const hbuf = Buffer.alloc(Math.min(fileSize, QCOW2_V3_MIN_HEADER_LENGTH));
    await preadFull(fh, hbuf, 0);
    const h = parseQcow2Header(path, hbuf, fileSize);
    if (!readOnly) checkWritableHeader(path, h);
    const first = Buffer.alloc(Math.min(fileSize, h.clusterSize));
    await preadFull(fh, first, 0);
    const spec = parseBackingSpec(path, h, first);
    if (spec && !ctx.backingAllowed) {
      throw new XenError('EOPNOTSUPP', `${path}: qcow2 image names a backing file (${spec.name}) but its format was probed; give format=qcow2 to use backing files`);
    }
    if (spec && ctx.depth + 1 > MAX_BACKING_DEPTH) {
      throw new XenError('EINVAL', `${path}: backing file chain deeper than ${MAX_BACKING_DEPTH} (a loop?)`);
    }
    const backing = spec ? await ctx.openBacking(spec.path, spec.format) : undefined;
    try {
      return await Qcow2Image.openWith(path, fh, readOnly, h, fileSize, backing);
    } catch (e) {
      await backing?.close();
      throw e;
    }
  }

  private static async openWith(
    path: string,
    fh: FileHandle,
    readOnly: boolean,
    h: Qcow2Header,
    fileSize: number,
    backing: BlockImage | undefined,
  ): Promise<Qcow2Image> {
    const l1 = Buffer.alloc(h.l1Size * 8);
    await preadFull(fh, l1, h.l1TableOffset);
    checkL1(path, h, l1, fileSize, readOnly);
    const refcounts = readOnly ? undefined : await Qcow2Refcounts.load(fh, path, h, fileSize);
    if (!readOnly && h.autoclearFeatures !== 0n) {
      // "An implementation may only write to an image with unknown auto-clear
      // features if it clears the respective bits from this field first":
      // we keep no bitmaps, so all of them.
      await pwriteFull(fh, Buffer.alloc(8), HDR_AUTOCLEAR_FEATURES);
    }
    return new Qcow2Image(path, fh, h, l1, refcounts, readOnly, fileSize, backing);
  }

  // ---- BlockImage ----------------------------------------------------------

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.checkOpen();
    checkRange(this.path, this.size, offset, length);
    const out = Buffer.allocUnsafe(length);
    await this.op('read', () => this.readInto(offset, out));
    return out;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkOpen();
    checkWritable(this.path, this.readOnly);
    checkRange(this.path, this.size, offset, data.byteLength);
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    await this.op('write', () => this.writeRange(offset, buf));
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (this.readOnly) return;
    // Completed writes have their data and metadata on the file (the queue is
    // drained too, in case a table-creation write is still going out; it
    // rejects if a metadata write failed); one fdatasync makes data and
    // metadata durable together (same file).
    await this.op('flush', async () => {
      await this.meta.enqueue([]);
      await this.fh.datasync();
    });
  }

  async discard(offset: number, length: number): Promise<void> {
    this.checkOpen();
    checkWritable(this.path, this.readOnly);
    checkRange(this.path, this.size, offset, length);
    await this.op('discard', () => this.discardRange(offset, length));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.mutex.run(() => this.meta.enqueue([]).catch(() => undefined));
    await this.fh.close();
    await this.backing?.close();
  }

  // ---- reads ---------------------------------------------------------------

  private async readInto(offset: number, out: Buffer): Promise<void> {
    const ios: Promise<unknown>[] = [];
    let runHost = 0;
    let runAt = 0;
    let runLen = 0;
    const endRun = () => {
      if (runLen > 0) ios.push(preadFull(this.fh, out.subarray(runAt, runAt + runLen), runHost));
      runLen = 0;
    };
    for (const s of await this.segments(offset, out.length)) {
      if (s.e.kind === 'unallocated' && this.backing) {
        endRun();
        ios.push(this.readBacking(s.g * this.cs + s.inCluster, out.subarray(s.at, s.at + s.n)));
        continue;
      }
      if (s.e.kind === 'normal') {
        const host = s.e.offset + s.inCluster;
        if (runLen > 0 && runHost + runLen === host) runLen += s.n;
        else {
          endRun();
          runHost = host;
          runAt = s.at;
          runLen = s.n;
        }
        continue;
      }
      endRun();
      if (s.e.kind === 'compressed') {
        ios.push(this.readCompressed(s.g).then((c) => c.copy(out, s.at, s.inCluster, s.inCluster + s.n)));
      } else {
        out.fill(0, s.at, s.at + s.n);
      }
    }
    endRun();
    await settleAll(ios);
  }

  // ---- writes --------------------------------------------------------------

  /** Write in place where clusters are ours alone; allocate (with COW) the rest. */
  private async writeRange(offset: number, data: Buffer): Promise<void> {
    const segs = await this.segments(offset, data.length);
    // Check every target before the first write starts, so a refusal leaves no I/O behind.
    for (const s of segs) if (this.inPlace(s)) this.checkDataCluster(s.e.offset, s.g);
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < segs.length; ) {
      const s = segs[i]!;
      let j = i + 1;
      if (this.inPlace(s)) {
        let len = s.n;
        for (; j < segs.length; j++) {
          const t = segs[j]!;
          if (!this.inPlace(t) || t.e.offset !== s.e.offset + s.inCluster + len) break;
          len += t.n;
        }
        jobs.push(pwriteFull(this.fh, data.subarray(s.at, s.at + len), s.e.offset + s.inCluster));
      } else {
        while (j < segs.length && !this.inPlace(segs[j]!)) j++;
        const last = segs[j - 1]!;
        jobs.push(this.allocatingWrite(offset + s.at, data.subarray(s.at, last.at + last.n)));
      }
      i = j;
    }
    await settleAll(jobs);
  }

  private inPlace(s: Seg): boolean {
    return s.e.kind === 'normal' && s.e.copied && !this.pending.has(s.g);
  }

  private async allocatingWrite(offset: number, data: Buffer): Promise<void> {
    for (;;) {
      const plan = await this.mutex.run(() => this.poisonOnThrow(() => this.planAllocation(offset, data.length)));
      if (plan.kind === 'wait') {
        await plan.until;
        continue;
      }
      if (plan.kind === 'retry') return this.writeRange(offset, data);
      try {
        await this.writeNewClusters(plan.alloc, data);
        await this.commit(plan.alloc);
      } catch (e) {
        // Best effort: if the metadata queue has failed, nothing more reaches the file anyway.
        await this.locked(() => this.undoAllocation(plan.alloc)).catch(() => undefined);
        throw e;
      } finally {
        for (const s of plan.alloc.segs) this.pending.delete(s.g);
        plan.done();
      }
      return;
    }
  }

  /** Locked: give [offset, offset+length) new host clusters, or say why not yet. */
  private async planAllocation(offset: number, length: number): Promise<Plan> {
    this.trimCache();
    const firstG = Math.floor(offset / this.cs);
    const lastG = Math.floor((offset + length - 1) / this.cs);
    for (let g = firstG; g <= lastG; g++) {
      const p = this.pending.get(g);
      if (p) return { kind: 'wait', until: p };
    }
    for (let l1i = Math.floor(firstG / this.l2Entries); l1i <= Math.floor(lastG / this.l2Entries); l1i++) {
      await this.ensureL2(l1i);
    }
    const segs = await this.segments(offset, length);
    if (segs.some((s) => s.e.kind === 'normal' && s.e.copied)) return { kind: 'retry' };
    // A zero cluster with a preallocated host cluster of its own (v3,
    // preallocation=metadata) is written in place of the zeros, as QEMU does.
    const reuse = (s: Seg) => s.e.kind === 'zero' && s.e.copied && s.e.offset !== 0;
    for (const s of segs) if (reuse(s)) this.checkDataCluster(s.e.offset, s.g); // before allocating: no leak on refusal
    const count = segs.filter((s) => !reuse(s)).length;
    const first = count > 0 ? await this.refcounts!.allocate(count) : 0;
    this.hostLimit = Math.max(this.hostLimit, (first + count) * this.cs);
    let next = first;
    const hosts = segs.map((s) => (reuse(s) ? s.e.offset : next++ * this.cs));
    let done!: () => void;
    const settled = new Promise<void>((resolve) => (done = resolve));
    for (const s of segs) this.pending.set(s.g, settled);
    return { kind: 'go', alloc: { segs, hosts, fresh: { first, count } }, done };
  }

  /** Write whole new clusters: the request's bytes, the rest from the old cluster or zeros. */
  private async writeNewClusters(a: Allocation, data: Buffer): Promise<void> {
    const head = a.segs[0]!;
    const tail = a.segs[a.segs.length - 1]!;
    const tailEnd = tail.inCluster + tail.n;
    let buf = data;
    if (head.inCluster !== 0 || tailEnd !== this.cs) {
      buf = Buffer.allocUnsafe(a.segs.length * this.cs);
      data.copy(buf, head.inCluster);
      if (head.inCluster > 0) await this.oldBytes(head, buf.subarray(0, head.inCluster), 0);
      if (tailEnd < this.cs) {
        const at = (a.segs.length - 1) * this.cs;
        await this.oldBytes(tail, buf.subarray(at + tailEnd, at + this.cs), tailEnd);
      }
    }
    // One write per run of contiguous host clusters (normally the whole request).
    const writes: Promise<void>[] = [];
    for (let i = 0; i < a.hosts.length; ) {
      let j = i + 1;
      while (j < a.hosts.length && a.hosts[j] === a.hosts[i]! + (j - i) * this.cs) j++;
      writes.push(pwriteFull(this.fh, buf.subarray(i * this.cs, j * this.cs), a.hosts[i]!));
      i = j;
    }
    await settleAll(writes);
  }

  /** Fill `dst` with the current contents of seg's cluster from byte `from`. */
  private async oldBytes(s: Seg, dst: Buffer, from: number): Promise<void> {
    if (s.e.kind === 'normal') await preadFull(this.fh, dst, s.e.offset + from);
    else if (s.e.kind === 'compressed') (await this.readCompressed(s.g)).copy(dst, 0, from, from + dst.length);
    else if (s.e.kind === 'unallocated' && this.backing) await this.readBacking(s.g * this.cs + from, dst);
    else dst.fill(0);
  }

  /** Guest bytes at `guestOff` from the backing file; zeros past its end. */
  private async readBacking(guestOff: number, dst: Buffer): Promise<void> {
    const have = Math.max(0, Math.min(dst.length, this.backing!.size - guestOff));
    if (have > 0) dst.set(await this.backing!.read(guestOff, have));
    dst.fill(0, have);
  }

  /** Queue an allocation for the next batched commit. */
  private commit(alloc: Allocation): Promise<void> {
    return new Promise((resolve, reject) => {
      this.commitQueue.push({ alloc, resolve, reject });
      if (!this.committing) void this.runCommits();
    });
  }

  /**
   * Commit the queued allocations as one batch; commits that arrive while it
   * is being written wait and form the next batch.  A write completes once
   * its metadata is written (to the page cache; durable at the next flush).
   * (Acknowledging writes as soon as their metadata was queued, QEMU's
   * write-back style, measured slower here: smaller batches, more round trips.)
   */
  private async runCommits(): Promise<void> {
    this.committing = true;
    while (this.commitQueue.length > 0) {
      const batch = this.commitQueue;
      this.commitQueue = [];
      try {
        await this.locked(() => this.commitLocked(batch.map((b) => b.alloc)));
        for (const b of batch) b.resolve();
      } catch (e) {
        for (const b of batch) b.reject(e);
      }
    }
    this.committing = false;
  }

  /** Locked: refcounts, then the L2 entries, then drop what the new clusters replaced. */
  private async commitLocked(allocs: Allocation[]): Promise<MetaOp[]> {
    const ops = await this.refcounts!.takeWrites();
    const dirty = new DirtyTables();
    const freed: Extent[] = [];
    for (const a of allocs) {
      for (let i = 0; i < a.segs.length; i++) {
        const g = a.segs[i]!.g;
        const { table, off } = await this.tableOf(g);
        const l2i = g % this.l2Entries;
        const host = a.hosts[i]!;
        const old = this.hostExtent(readL2Entry(table, l2i), table, l2i);
        if (old && !(old.count === 1 && old.first * this.cs === host)) freed.push(old);
        writeL2Normal(table, l2i, host);
        dirty.mark(off, table, l2i);
      }
    }
    ops.push(...dirty.writes());
    ops.push(...(await this.release(freed)));
    return ops;
  }

  /** Locked: give back the clusters of a failed write (never referenced). */
  private async undoAllocation(a: Allocation): Promise<MetaOp[]> {
    if (a.fresh.count === 0) return [];
    await this.refcounts!.decref(a.fresh.first, a.fresh.count);
    return this.refcounts!.takeWrites();
  }

  /**
   * Locked: make sure L1 entry `l1i` has an L2 table; the zeroed table, its
   * refcount, then the L1 entry are queued in that order.
   */
  private async ensureL2(l1i: number): Promise<void> {
    if (readL1Entry(this.l1, l1i).offset !== 0) return;
    const off = (await this.refcounts!.allocate(1)) * this.cs;
    const table = Buffer.alloc(this.cs);
    const ops: MetaOp[] = [{ kind: 'write', offset: off, data: Buffer.alloc(this.cs) }];
    ops.push(...(await this.refcounts!.takeWrites()));
    this.l2.insert(off, table);
    writeL1Entry(this.l1, l1i, off);
    ops.push({ kind: 'write', offset: this.h.l1TableOffset + l1i * 8, data: Buffer.from(this.l1.subarray(l1i * 8, l1i * 8 + 8)) });
    // Later commits that fill this table queue behind these writes.
    void this.meta.enqueue(ops).catch(() => undefined);
  }

  /**
   * Run `f` under the mutex and queue the metadata writes it returns before
   * releasing it (so the queue keeps the order the changes were made in),
   * then wait for them outside the mutex.
   */
  private async locked(f: () => Promise<MetaOp[]>): Promise<void> {
    const { written } = await this.mutex.run(async () => ({ written: this.meta.enqueue(await this.poisonOnThrow(f)) }));
    await written;
  }

  /**
   * Locked: a metadata change that throws half-way stops all later metadata
   * writes, and no change starts once they are stopped.
   */
  private async poisonOnThrow<T>(f: () => Promise<T>): Promise<T> {
    this.meta.check();
    try {
      return await f();
    } catch (e) {
      this.meta.poison(e);
      throw e;
    }
  }

  /** Drop cached L2 tables over the cap, only when no table write is queued (the file is then current). */
  private trimCache(): void {
    if (this.meta.idle) this.l2.trim();
  }

  // ---- discard -------------------------------------------------------------

  private async discardRange(offset: number, length: number): Promise<void> {
    if (length === 0) return;
    const end = offset + length;
    const gFull = Math.ceil(offset / this.cs);
    const gFullEnd = Math.floor(end / this.cs);
    for (;;) {
      let wait: Promise<void> | undefined;
      await this.locked(async () => {
        const r = await this.deallocate(gFull, gFullEnd);
        if (Array.isArray(r)) return r;
        wait = r.wait;
        return [];
      });
      if (!wait) break;
      await wait;
    }
    // Partially covered clusters keep their mapping and get zeros written.
    const partial: Array<[number, number]> = [];
    if (gFull > gFullEnd) partial.push([offset, end]); // inside one cluster
    else {
      if (offset < gFull * this.cs) partial.push([offset, gFull * this.cs]);
      if (end > gFullEnd * this.cs) partial.push([gFullEnd * this.cs, end]);
    }
    for (const [from, to] of partial) {
      const e = await this.entryOf(Math.floor(from / this.cs));
      const showsData = e.kind === 'normal' || e.kind === 'compressed' || (e.kind === 'unallocated' && this.backing);
      if (showsData) await this.writeRange(from, Buffer.alloc(to - from));
    }
    // v2 has no zero clusters: over a backing file, whole clusters get zeros written.
    if (this.backing && this.h.version === 2) await this.writeZeros(gFull * this.cs, gFullEnd * this.cs);
  }

  private async writeZeros(from: number, to: number): Promise<void> {
    const chunk = Math.max(this.cs, 1 << 20);
    for (let at = from; at < to; at += chunk) await this.writeRange(at, Buffer.alloc(Math.min(chunk, to - at)));
  }

  /**
   * Locked: clear the L2 entries of guest clusters [g0, g1) and free their
   * host clusters (L2 writes first, then refcounts: a crash leaks, never
   * dangles), or return the pending allocation to wait for first.  Over a
   * backing file a cleared entry would show the backing data again, so v3
   * entries become zero clusters instead and v2 ones are left to discardRange
   * (zeros written).
   */
  private async deallocate(g0: number, g1: number): Promise<{ wait: Promise<void> } | MetaOp[]> {
    if (g0 >= g1 || (this.backing && this.h.version === 2)) return [];
    // (Wrapped: an async function returning the promise itself would wait for it, holding the mutex.)
    for (const [g, p] of this.pending) if (g >= g0 && g < g1) return { wait: p };
    this.trimCache();
    const dirty = new DirtyTables();
    const freed: Extent[] = [];
    for (let g = g0; g < g1; ) {
      const l1i = Math.floor(g / this.l2Entries);
      const tableEnd = Math.min(g1, (l1i + 1) * this.l2Entries);
      if (this.backing) await this.ensureL2(l1i); // zero clusters need a table to live in
      const off = readL1Entry(this.l1, l1i).offset;
      if (off === 0) {
        g = tableEnd;
        continue;
      }
      const table = await this.l2.get(off);
      for (; g < tableEnd; g++) {
        const l2i = g % this.l2Entries;
        const e = readL2Entry(table, l2i);
        if (e.kind === 'unallocated' && !this.backing) continue;
        if (e.kind === 'zero' && e.offset === 0) continue;
        const old = this.hostExtent(e, table, l2i);
        if (old) freed.push(old);
        if (this.backing) writeL2Zero(table, l2i);
        else clearL2Entry(table, l2i);
        dirty.mark(off, table, l2i);
      }
    }
    return [...dirty.writes(), ...(await this.release(freed))];
  }

  /** Locked: drop one reference per freed extent; freed clusters wait out older I/O. */
  private async release(freed: Extent[]): Promise<MetaOp[]> {
    if (freed.length === 0) return [];
    // The batch these changes go out in is the next one queued (the caller queues it before unlocking).
    const fence = { seq: this.opSeq, batch: this.meta.nextBatch };
    for (const x of freed) await this.refcounts!.decref(x.first, x.count, fence);
    return this.refcounts!.takeWrites();
  }

  // ---- mapping -------------------------------------------------------------

  /** Split [offset, offset+length) by guest cluster, with each cluster's current L2 entry. */
  private async segments(offset: number, length: number): Promise<Seg[]> {
    const segs: Seg[] = [];
    let l1Cur = -1;
    let table: Buffer | undefined;
    for (let at = 0; at < length; ) {
      const pos = offset + at;
      const g = Math.floor(pos / this.cs);
      const inCluster = pos % this.cs;
      const n = Math.min(this.cs - inCluster, length - at);
      const l1i = Math.floor(g / this.l2Entries);
      if (l1i !== l1Cur) {
        l1Cur = l1i;
        const off = readL1Entry(this.l1, l1i).offset;
        const t = off === 0 ? undefined : this.l2.get(off);
        table = t instanceof Promise ? await t : t;
      }
      const e = table ? readL2Entry(table, g % this.l2Entries) : UNALLOCATED;
      segs.push({ g, inCluster, at, n, e });
      at += n;
    }
    return segs;
  }

  private async entryOf(g: number): Promise<L2Entry> {
    const off = readL1Entry(this.l1, Math.floor(g / this.l2Entries)).offset;
    if (off === 0) return UNALLOCATED;
    return readL2Entry(await this.l2.get(off), g % this.l2Entries);
  }

  /** Locked: the L2 table holding guest cluster g (it exists: ensureL2 ran). */
  private async tableOf(g: number): Promise<{ table: Buffer; off: number }> {
    const off = readL1Entry(this.l1, Math.floor(g / this.l2Entries)).offset;
    return { table: await this.l2.get(off), off };
  }

  /** The host clusters an entry holds a reference to, if any. */
  private hostExtent(e: L2Entry, table: Buffer, l2i: number): Extent | undefined {
    if (e.kind === 'compressed') {
      return compressedClusters(decodeCompressed(readCompressedDescriptor(table, l2i), this.h.clusterBits), this.cs);
    }
    if (e.offset === 0) return undefined;
    return { first: e.offset / this.cs, count: 1 };
  }

  private async readCompressed(g: number): Promise<Buffer> {
    const { table } = await this.tableOf(g);
    const ext = decodeCompressed(readCompressedDescriptor(table, g % this.l2Entries), this.h.clusterBits);
    const zstd = (this.h.incompatibleFeatures & INCOMPAT_COMPRESSION_TYPE) !== 0n;
    return readCompressedCluster(this.fh, this.path, ext, this.cs, zstd);
  }

  /**
   * Refuse to write guest data over the header, the L1 table or the refcount
   * table (QEMU's metadata overlap check, in part), at an unaligned offset, or
   * past the end of the file: an L2 entry like that means a corrupt or
   * hostile image.
   */
  private checkDataCluster(host: number, g: number): void {
    const what =
      host % this.cs !== 0
        ? 'an unaligned offset'
        : host + this.cs > this.hostLimit
          ? 'past the end of the file'
          : (fixedMetadataAt(this.h, host, false) ?? (this.refcounts!.overlapsTable(host) ? 'the refcount table' : undefined));
    if (what) throw new XenError('EIO', `${this.path}: corrupt qcow2 image: guest cluster ${g} maps to ${what} (${host})`);
  }

  // ---- bookkeeping ---------------------------------------------------------

  private async op<T>(what: string, f: () => Promise<T>): Promise<T> {
    const seq = ++this.opSeq;
    this.inflight.add(seq);
    try {
      return await f();
    } catch (e) {
      throw imageIoError(this.path, what, e);
    } finally {
      this.inflight.delete(seq);
    }
  }

  private oldestInflight(): number {
    for (const s of this.inflight) return s;
    return Infinity;
  }

  private checkOpen(): void {
    if (this.closed) throw new XenError('EBADF', `${this.path}: image is closed`);
  }
}
