/**
 * One page of a domain's pseudo-physical memory, as the hypervisor holds it.
 *
 * `version` moves on every write the hypervisor makes or sees (a flush, a
 * grant copy, a foreign write, a grant flag update), so it knows which
 * mirrors (DESIGN §4) are stale.  Pages of a guest's RAM are written by its
 * vCPUs directly in the SharedArrayBuffer, unseen: they are `volatile` and
 * every mirror of one is refreshed at every delivery.
 */
import { XEN_PAGE_SIZE } from '@xenbox/abi';
import type { Mirror } from './mirror.js';

export class Page {
  version = 0;
  /** Mirrors of this page held by domain processes (its owner's or mappers'). */
  readonly mirrors = new Set<Mirror>();
  /** Grant mappings (maptrack entries) currently pinning this page. */
  pins = 0;

  constructor(
    readonly bytes: Uint8Array,
    readonly volatile: boolean,
  ) {}

  static fresh(): Page {
    return new Page(new Uint8Array(XEN_PAGE_SIZE), false);
  }

  /** Record a write by the hypervisor or a process flush: every mirror of the page is now stale. */
  touch(): void {
    this.version++;
    if (this.mirrors.size !== 0) for (const m of this.mirrors) m.changed.add(m);
  }

  write(offset: number, data: Uint8Array): void {
    this.bytes.set(data, offset);
    this.touch();
  }
}
