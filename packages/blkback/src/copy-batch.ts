/**
 * Grant copies gathered into one GNTTABOP_copy per turn of the event loop:
 * the requests taken off a ring in one pass each ask for their segments, and
 * the hypervisor sees a single batched call carrying all of them (Linux
 * blkback batches a request's segments into one gnttab_batch_copy; here
 * whole passes share it).  Each caller gets back the results of its own ops.
 */
import { GNTTAB_MAX_BATCH, type GnttabCopy, type GnttabCopyResult } from '@xenbox/abi';
import type { GrantMapper } from '@xenbox/libxen';

interface Waiter {
  start: number;
  count: number;
  resolve(r: GnttabCopyResult[]): void;
  reject(e: unknown): void;
}

export class CopyBatch {
  private ops: GnttabCopy[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  /** Calls made and ops carried, for the stats line and the benchmark. */
  calls = 0;
  opsCopied = 0;

  constructor(private readonly mapper: GrantMapper) {}

  copy(ops: GnttabCopy[]): Promise<GnttabCopyResult[]> {
    if (ops.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      if (this.ops.length + ops.length > GNTTAB_MAX_BATCH) this.send();
      this.waiters.push({ start: this.ops.length, count: ops.length, resolve, reject });
      for (const op of ops) this.ops.push(op);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.send());
      }
    });
  }

  private send(): void {
    this.scheduled = false;
    const ops = this.ops;
    const waiters = this.waiters;
    if (ops.length === 0) return;
    this.ops = [];
    this.waiters = [];
    this.calls++;
    this.opsCopied += ops.length;
    this.mapper.copyResults(ops).then(
      (results) => {
        for (const w of waiters) w.resolve(results.slice(w.start, w.start + w.count));
      },
      (e: unknown) => {
        for (const w of waiters) w.reject(e);
      },
    );
  }
}
