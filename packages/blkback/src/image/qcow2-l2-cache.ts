/**
 * The in-memory copy of qcow2 L2 tables.  Tables are written through (every
 * change reaches the file before the metadata mutex is released), so a cached
 * table is never dirty and can be dropped at any time the mutex is held; a
 * load in progress is shared so one table has one Buffer.
 */
import type { FileHandle } from 'node:fs/promises';
import { preadFull } from './file-io.js';

/** Cap on cached table bytes (64 KiB clusters: one table maps 512 MiB). */
const DEFAULT_CACHE_BYTES = 64 << 20;

export class L2Cache {
  private readonly tables = new Map<number, Buffer>();
  private readonly loading = new Map<number, Promise<Buffer>>();
  private readonly maxTables: number;

  constructor(
    private readonly fh: FileHandle,
    private readonly clusterSize: number,
    cacheBytes = DEFAULT_CACHE_BYTES,
  ) {
    this.maxTables = Math.max(4, Math.floor(cacheBytes / clusterSize));
  }

  /** The cached table at host offset `off`, if any. */
  peek(off: number): Buffer | undefined {
    return this.tables.get(off);
  }

  /** The table at `off`, from the cache or the file. */
  get(off: number): Buffer | Promise<Buffer> {
    const t = this.tables.get(off);
    if (t) return t;
    let p = this.loading.get(off);
    if (!p) {
      p = this.load(off);
      this.loading.set(off, p);
    }
    return p;
  }

  /** A table just created (all zeros, already written). */
  insert(off: number, table: Buffer): void {
    this.tables.set(off, table);
  }

  /** Drop the oldest tables beyond the cap; call only with the metadata mutex held. */
  trim(): void {
    for (const off of this.tables.keys()) {
      if (this.tables.size <= this.maxTables) break;
      this.tables.delete(off);
    }
  }

  private async load(off: number): Promise<Buffer> {
    try {
      const t = Buffer.alloc(this.clusterSize);
      await preadFull(this.fh, t, off);
      this.tables.set(off, t);
      return t;
    } finally {
      this.loading.delete(off);
    }
  }
}
