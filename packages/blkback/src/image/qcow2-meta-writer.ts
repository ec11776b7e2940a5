/**
 * The one queue through which qcow2 metadata reaches the file.  Changes are
 * made in memory under the image's mutex and turned into write operations
 * (copies of the changed bytes) there; the operations then run here strictly
 * in the order they were queued, outside the mutex, so new allocations are
 * planned while earlier metadata is still being written.  The queue order is
 * the crash-safety order: refcount blocks before the L2 entries that use
 * them, L2 tables before the L1 entries that point at them.
 */
import type { FileHandle } from 'node:fs/promises';
import { pwriteFull } from './file-io.js';

export type MetaOp = { kind: 'write'; offset: number; data: Buffer } | { kind: 'sync' };

export class MetaWriter {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  /** Batches queued so far, and how many of them are written (they complete in order). */
  private enqueued = 0;
  private written = 0;
  /** The first write that failed: nothing after it may reach the file (it could depend on it). */
  private failed: unknown;

  constructor(private readonly fh: FileHandle) {}

  /** True when nothing is queued or being written. */
  get idle(): boolean {
    return this.queued === 0;
  }

  /**
   * Refuse every later write: a metadata change failed half-way, so memory
   * and file may disagree and nothing more may be built on either (QEMU marks
   * such an image corrupt and stops writing it).
   */
  poison(e: unknown): void {
    this.failed ??= e;
  }

  /** Throw the failure that stopped the queue, if any: call before changing metadata in memory. */
  check(): void {
    if (this.failed !== undefined) throw this.failed;
  }

  /** The number the next enqueue() call's batch gets. */
  get nextBatch(): number {
    return this.enqueued + 1;
  }

  /** How many batches are on the file (all batches up to this number). */
  get writtenBatches(): number {
    return this.written;
  }

  /** Queue `ops` after everything queued so far; resolves when they are written. */
  enqueue(ops: MetaOp[]): Promise<void> {
    this.queued++;
    const batch = ++this.enqueued;
    const run = this.tail.then(async () => {
      await this.run(ops);
      this.written = batch;
    });
    this.tail = run.then(
      () => void this.queued--,
      () => void this.queued--,
    );
    return run;
  }

  private async run(ops: MetaOp[]): Promise<void> {
    if (this.failed !== undefined) throw this.failed;
    try {
      for (const op of ops) {
        if (op.kind === 'sync') await this.fh.datasync();
        else await pwriteFull(this.fh, op.data, op.offset);
      }
    } catch (e) {
      this.failed = e;
      throw e;
    }
  }
}

