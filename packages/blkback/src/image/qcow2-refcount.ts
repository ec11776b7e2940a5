/**
 * qcow2 host cluster refcounts (QEMU docs/interop/qcow2.txt, "Host cluster
 * management"): a refcount table of refcount-block offsets, each block one
 * cluster of 16-bit big-endian counts (refcount_order 4).
 *
 * Everything here runs under the image's metadata mutex.  Changes are made in
 * memory and handed out as writes by takeWrites(), which the image queues
 * before any L2/L1 entry that depends on them (QEMU's ordering: refcounts
 * before the mapping that uses them, so a crash can leak a cluster but never
 * leave a mapping to a free one).
 *
 * Allocation takes the lowest run of free clusters at or after a hint (the end
 * of the file for a fresh image: "append").  A refcount block that does not
 * exist yet covers only free clusters; new blocks go right after the clusters
 * they were created for, inside the same free run.  When the table is too
 * small for a new block, a bigger table is allocated, written, made durable,
 * and then switched to in the header; the old one is freed.
 */
import type { FileHandle } from 'node:fs/promises';
import { XenError } from '@xenbox/abi';
import { preadFull } from './file-io.js';
import type { MetaOp } from './qcow2-meta-writer.js';
import { HDR_REFCOUNT_TABLE_OFFSET, QCOW2_MAX_REFTABLE_BYTES, fixedMetadataAt, type Qcow2Header } from './qcow2-header.js';
import { readL1Entry, l1EntryReservedBits } from './qcow2-entry.js';

const REFCOUNT_MAX = 0xffff;

interface DirtyRange {
  lo: number;
  hi: number;
}

export class Qcow2Refcounts {
  private readonly cs: number;
  /** Refcounts per block: cluster_size * 8 / 16. */
  private readonly perBlock: number;
  /** Host offsets of refcount blocks by table index, 0 = not allocated. */
  private table: number[];
  private tableOffset: number;
  private tableClusters: number;
  private readonly blocks = new Map<number, Buffer>();
  /** Blocks created in memory and not yet written (whole block + table entry). */
  private readonly newBlocks = new Set<number>();
  private readonly dirty = new Map<number, DirtyRange>();
  /** Every cluster below this one is in use (or quarantined). */
  private freeHint = 0;
  /**
   * Freed clusters not to be reused yet: cluster -> the op sequence at the
   * free (I/O started up to then may still touch it) and the metadata batch
   * that drops the mapping to it (until that is on the file, a crash would
   * bring the old mapping back, pointing at whatever the cluster then holds).
   */
  private readonly quarantine = new Map<number, { seq: number; batch: number }>();

  private constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    h: Qcow2Header,
    table: number[],
  ) {
    this.cs = h.clusterSize;
    this.perBlock = h.clusterSize / 2;
    this.table = table;
    this.tableOffset = h.refcountTableOffset;
    this.tableClusters = h.refcountTableClusters;
  }

  static async load(fh: FileHandle, path: string, h: Qcow2Header, fileSize: number): Promise<Qcow2Refcounts> {
    const buf = Buffer.alloc(h.refcountTableClusters * h.clusterSize);
    await preadFull(fh, buf, h.refcountTableOffset);
    const table: number[] = [];
    for (let i = 0; i < buf.length / 8; i++) {
      const { offset } = readL1Entry(buf, i);
      if (l1EntryReservedBits(buf, i) || offset % h.clusterSize !== 0 || offset + h.clusterSize > fileSize) {
        throw new XenError('EINVAL', `${path}: bad qcow2 refcount table entry ${i} (${offset}): unaligned or past the end of the file`);
      }
      const over = offset === 0 ? undefined : fixedMetadataAt(h, offset);
      if (over) throw new XenError('EINVAL', `${path}: bad qcow2 refcount table entry ${i}: refcount block at ${offset} overlaps ${over}`);
      table.push(offset);
    }
    // The header cluster must be counted by block 0; a missing block 0 would
    // make the allocator place a new block over the header.
    if (table[0] === 0) throw new XenError('EINVAL', `${path}: bad qcow2 refcount table: no block for the header cluster`);
    return new Qcow2Refcounts(fh, path, h, table);
  }

  /** True if [host, host+cluster) overlaps the refcount table. */
  overlapsTable(host: number): boolean {
    return host < this.tableOffset + this.tableClusters * this.cs && host + this.cs > this.tableOffset;
  }

  /** Refcount of host cluster `c`. */
  async get(c: number): Promise<number> {
    const blk = await this.block(Math.floor(c / this.perBlock));
    return blk ? blk.readUInt16BE((c % this.perBlock) * 2) : 0;
  }

  /**
   * The sequence number of the oldest I/O still in flight (Infinity if none),
   * set by the image: a quarantined cluster freed before that I/O started may
   * be reused, for data or metadata alike.
   */
  oldestInflight: () => number = () => Infinity;
  /** How many metadata batches are written (set by the image). */
  writtenBatches: () => number = () => Infinity;

  /**
   * Allocate `n` contiguous clusters with refcount 1; returns the first
   * cluster index.  Refcount blocks missing over the run are created in
   * memory and placed right after it (inside the run searched for, so they
   * are covered by themselves or by each other).
   */
  async allocate(n: number): Promise<number> {
    this.releaseQuarantine();
    let m = n;
    for (;;) {
      const start = await this.findFreeRun(m);
      const missing = this.missingBlocks(start, m);
      if (n + missing.length <= m) {
        missing.forEach((ti, i) => this.createBlock(ti, start + n + i));
        for (let c = start; c < start + n + missing.length; c++) this.set(c, 1);
        return start;
      }
      m = Math.max(m + 1, n + missing.length);
    }
  }

  /**
   * Drop one reference to each cluster in [c, c+n).  With `fence`, a freed
   * cluster waits out the I/O started up to fence.seq and the write of
   * metadata batch fence.batch before it is reused.
   */
  async decref(c: number, n = 1, fence?: { seq: number; batch: number }): Promise<void> {
    for (let i = c; i < c + n; i++) {
      const v = await this.get(i);
      if (v === 0) throw new XenError('EIO', `${this.path}: qcow2 refcount of cluster ${i} would drop below zero (corrupt image)`);
      this.set(i, v - 1);
      if (v === 1) this.noteFreed(i, fence);
    }
  }

  /**
   * The writes that put every refcount change made so far on disk (copies,
   * taken now): new and changed blocks, then their table entries, or a whole
   * new table and the header switch to it.
   */
  async takeWrites(): Promise<MetaOp[]> {
    if (this.table.length > this.tableClusters * (this.cs / 8)) return this.growTable();
    const ops = this.blockWrites();
    for (const ti of this.newBlocks) {
      const entry = Buffer.alloc(8);
      entry.writeBigUInt64BE(BigInt(this.table[ti]!));
      ops.push({ kind: 'write', offset: this.tableOffset + ti * 8, data: entry });
    }
    this.newBlocks.clear();
    return ops;
  }

  private blockWrites(): MetaOp[] {
    const ops: MetaOp[] = [];
    for (const ti of this.newBlocks) this.dirty.set(ti, { lo: 0, hi: this.perBlock });
    for (const [ti, r] of this.dirty) {
      const data = Buffer.from(this.blocks.get(ti)!.subarray(r.lo * 2, r.hi * 2));
      ops.push({ kind: 'write', offset: this.table[ti]! + r.lo * 2, data });
    }
    this.dirty.clear();
    return ops;
  }

  private releaseQuarantine(): void {
    if (this.quarantine.size === 0) return;
    const oldest = this.oldestInflight();
    const written = this.writtenBatches();
    // Entries are in increasing seq and batch order (the Map keeps insertion order).
    for (const [c, f] of this.quarantine) {
      if (f.seq >= oldest || f.batch > written) break;
      this.quarantine.delete(c);
      if (c < this.freeHint) this.freeHint = c;
    }
  }

  private noteFreed(c: number, fence: { seq: number; batch: number } | undefined): void {
    if (fence) this.quarantine.set(c, fence);
    else if (c < this.freeHint) this.freeHint = c;
  }

  /** The lowest run of `n` free clusters at or after the hint. */
  private async findFreeRun(n: number): Promise<number> {
    let c = this.freeHint;
    let runStart = c;
    let runLen = 0;
    while (runLen < n) {
      const ti = Math.floor(c / this.perBlock);
      const blk = await this.block(ti);
      const base = ti * this.perBlock;
      const end = base + this.perBlock;
      if (!blk && this.quarantine.size === 0) {
        // No block: the whole range is free.
        if (runLen === 0) runStart = c;
        const take = Math.min(end - c, n - runLen);
        runLen += take;
        c += take;
        continue;
      }
      for (; c < end && runLen < n; c++) {
        const used = (blk !== undefined && blk.readUInt16BE((c - base) * 2) !== 0) || this.quarantine.has(c);
        if (used) {
          runLen = 0;
          if (c === this.freeHint) this.freeHint = c + 1;
        } else {
          if (runLen === 0) runStart = c;
          runLen++;
        }
      }
    }
    return runStart;
  }

  /** Table indexes of the refcount blocks missing over [start, start+n). */
  private missingBlocks(start: number, n: number): number[] {
    const missing: number[] = [];
    const last = Math.floor((start + n - 1) / this.perBlock);
    for (let ti = Math.floor(start / this.perBlock); ti <= last; ti++) {
      if (ti >= this.table.length || this.table[ti] === 0) missing.push(ti);
    }
    return missing;
  }

  /** A new, empty refcount block for table index `ti`, stored at host cluster `at`. */
  private createBlock(ti: number, at: number): void {
    while (this.table.length <= ti) this.table.push(0);
    this.table[ti] = at * this.cs;
    this.blocks.set(ti, Buffer.alloc(this.cs));
    this.newBlocks.add(ti);
  }

  private set(c: number, v: number): void {
    if (v > REFCOUNT_MAX) throw new XenError('EIO', `${this.path}: qcow2 refcount of cluster ${c} overflows 16 bits`);
    const ti = Math.floor(c / this.perBlock);
    const blk = this.blocks.get(ti);
    if (!blk) throw new Error(`refcount block ${ti} not loaded`);
    const i = c % this.perBlock;
    blk.writeUInt16BE(v, i * 2);
    const r = this.dirty.get(ti);
    if (!r) this.dirty.set(ti, { lo: i, hi: i + 1 });
    else {
      if (i < r.lo) r.lo = i;
      if (i + 1 > r.hi) r.hi = i + 1;
    }
  }

  private async block(ti: number): Promise<Buffer | undefined> {
    const have = this.blocks.get(ti);
    if (have) return have;
    const off = ti < this.table.length ? this.table[ti]! : 0;
    if (off === 0) return undefined;
    const blk = Buffer.alloc(this.cs);
    await preadFull(this.fh, blk, off);
    this.blocks.set(ti, blk);
    return blk;
  }

  /**
   * Move the refcount table to a bigger home: allocate it (which may itself add
   * blocks, hence the loop), then write blocks and table, make them durable,
   * point the header at the new table, make that durable, and free the old one.
   */
  private async growTable(): Promise<MetaOp[]> {
    const perCluster = this.cs / 8;
    let clusters = Math.max(this.tableClusters * 2, Math.ceil(this.table.length / perCluster) + 1);
    let start: number;
    for (;;) {
      if (clusters * this.cs > QCOW2_MAX_REFTABLE_BYTES) {
        throw new XenError('ENOSPC', `${this.path}: qcow2 refcount table would exceed ${QCOW2_MAX_REFTABLE_BYTES} bytes`);
      }
      start = await this.allocate(clusters);
      if (this.table.length <= clusters * perCluster) break;
      for (let c = start; c < start + clusters; c++) this.set(c, 0);
      if (start < this.freeHint) this.freeHint = start;
      clusters *= 2;
    }
    const ops = this.blockWrites();
    const table = Buffer.alloc(clusters * this.cs);
    this.table.forEach((off, i) => table.writeBigUInt64BE(BigInt(off), i * 8));
    const hdr = Buffer.alloc(12);
    hdr.writeBigUInt64BE(BigInt(start * this.cs), 0);
    hdr.writeUInt32BE(clusters, 8);
    ops.push(
      { kind: 'write', offset: start * this.cs, data: table },
      { kind: 'sync' },
      { kind: 'write', offset: HDR_REFCOUNT_TABLE_OFFSET, data: hdr },
      { kind: 'sync' },
    );
    const oldStart = this.tableOffset / this.cs;
    const oldClusters = this.tableClusters;
    this.tableOffset = start * this.cs;
    this.tableClusters = clusters;
    this.newBlocks.clear(); // their entries are in the new table
    await this.decref(oldStart, oldClusters);
    ops.push(...this.blockWrites());
    return ops;
  }
}
