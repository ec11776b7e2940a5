/**
 * L2 entries changed under the metadata mutex, turned into one write per
 * table (a copy of the changed slice, taken at once) for the metadata queue.
 */
import type { MetaOp } from './qcow2-meta-writer.js';

/** Changed L2 entries per table, written as one slice per table. */
export class DirtyTables {
  private readonly ranges = new Map<number, { table: Buffer; lo: number; hi: number }>();

  mark(off: number, table: Buffer, i: number): void {
    const r = this.ranges.get(off);
    if (!r) this.ranges.set(off, { table, lo: i, hi: i + 1 });
    else {
      r.lo = Math.min(r.lo, i);
      r.hi = Math.max(r.hi, i + 1);
    }
  }

  /** The changed slices, copied now. */
  writes(): MetaOp[] {
    return [...this.ranges].map(([off, r]) => ({
      kind: 'write' as const,
      offset: off + r.lo * 8,
      data: Buffer.from(r.table.subarray(r.lo * 8, r.hi * 8)),
    }));
  }
}
