/**
 * Persistent grants (blkif.h feature-persistent; Linux xen-blkback's
 * persistent_gnt tree, at most max_pgrants = 1056 per ring): a front end
 * that reuses the same granted pages for its data lets the backend map each
 * once and keep it.  In xenbox a mapped grant is a mirror (DESIGN §4), which
 * changes what "mapped" buys:
 *
 *  - a write's data reaches us inside the refresh that comes with the
 *    front end's event: read straight from the mirror, no grant copy call;
 *  - a read's data is written into the mirror and flushed with the ring
 *    update before the notify (posted): no grant copy call either.
 *
 * A mirror is only known current right after an event (the hypervisor
 * refreshes every stale mirror before delivering one); a request seen later
 * (after our own ring sync) has its pages synced first (`sync`).  Data is
 * always copied out of the mirror before it is used (no double fetch).
 */
import { GNTST, type DomId } from '@xenbox/abi';
import { Mirrors, type GrantMapper, type HypervisorConnection, type MirrorPage } from '@xenbox/libxen';

/** Linux xen-blkback's default max_persistent_grants. */
export const MAX_PERSISTENT_GRANTS = 1056;

interface Mapped {
  handle: number;
  page: MirrorPage;
}

export class PersistentGrants {
  private readonly mapped = new Map<number, Mapped>();

  constructor(
    private readonly hv: HypervisorConnection,
    private readonly mapper: GrantMapper,
    private readonly frontend: DomId,
    private readonly max = MAX_PERSISTENT_GRANTS,
  ) {}

  get size(): number {
    return this.mapped.size;
  }

  /** The pages of `grefs` if every one is mapped already (synchronous), else null. */
  pagesIfMapped(grefs: number[]): MirrorPage[] | null {
    const out: MirrorPage[] = [];
    for (const g of grefs) {
      const m = this.mapped.get(g);
      if (!m || m.page.revoked) return null;
      out.push(m.page);
    }
    return out;
  }

  /**
   * Map what is missing (one batched call; a fresh snapshot comes with each)
   * and sync what was mapped before; null when the cache would overflow (the
   * caller then uses grant copy), or a GNTST status when a map fails.
   */
  async pages(grefs: number[], needData: boolean): Promise<MirrorPage[] | null | { status: number; gref: number }> {
    const missing = [...new Set(grefs.filter((g) => !this.mapped.has(g)))];
    if (this.mapped.size + missing.length > this.max) return null;
    const old = needData ? [...new Set(grefs.filter((g) => this.mapped.has(g)))].map((g) => this.mapped.get(g)!.page) : [];
    const [results] = await Promise.all([
      missing.length ? this.mapper.map(missing.map((ref) => ({ dom: this.frontend, ref }))) : Promise.resolve([]),
      old.length ? Mirrors.of(this.hv).sync(old) : Promise.resolve(),
    ]);
    let failed: { status: number; gref: number } | null = null;
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      if (r.status === GNTST.okay && r.page) this.mapped.set(missing[i]!, { handle: r.handle, page: r.page });
      else failed ??= { status: r.status, gref: missing[i]! };
    }
    return failed ?? this.pagesIfMapped(grefs);
  }

  async unmapAll(): Promise<void> {
    const all = [...this.mapped.values()];
    this.mapped.clear();
    if (all.length) await this.mapper.unmap(all).catch(() => undefined);
  }
}
