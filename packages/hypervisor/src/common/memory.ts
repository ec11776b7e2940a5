/**
 * A domain's pseudo-physical memory (xen/common/memory.c, page_alloc.c): a
 * p2m from guest frame numbers to pages, a max_pages limit (max_mem) and
 * host accounting.
 *
 * - A guest (pvh/hvm) has its RAM in one growable SharedArrayBuffer, shared
 *   with its vCPU threads: gfn GUEST_RAM_BASE_GFN + i is at byte i * 4096
 *   (`ram`, `ramBaseGfn`).  Only populated gfns are in the p2m; a ballooned
 *   out page is zeroed and leaves it.
 * - A process domain's memory is a handful of pages allocated on demand
 *   (increase_reservation), so it can grant its own pages.
 * - Grant-table frames are hypervisor pages placed in the p2m at
 *   GNTTAB_FRAMES_BASE_GFN (like XENMAPSPACE_grant_table); they count
 *   against the host, not against tot_pages, as Xen heap pages don't.
 */
import {
  GUEST_RAM_BASE_GFN,
  GNTTAB_FRAMES_BASE_GFN,
  PROCESS_RAM_BASE_GFN,
  XEN_PAGE_SIZE,
  XenError,
} from '@xenbox/abi';
import type { HostMemory } from './host-memory.js';
import { Page } from './page.js';

/** Guest RAM may span gfns GUEST_RAM_BASE_GFN .. +RAM_WINDOW_PAGES (2 GiB; a growable SAB's limit here). */
export const GUEST_RAM_WINDOW_PAGES = 0x8_0000;

/** ES2024 growable SharedArrayBuffer (Node 20 has it; the TS lib here predates it). */
interface GrowableSab extends SharedArrayBuffer {
  grow(newLength: number): void;
}
const GrowableSab = SharedArrayBuffer as unknown as new (length: number, opts: { maxByteLength: number }) => GrowableSab;

export class DomainMemory {
  private readonly p2m = new Map<number, Page>();
  private ramPages = 0;
  /** A guest's RAM; undefined for a process domain. */
  readonly ram: SharedArrayBuffer | undefined;
  readonly ramBaseGfn: number;

  constructor(
    private readonly host: HostMemory,
    readonly isGuest: boolean,
    public maxPages: number,
    private readonly who: string,
  ) {
    this.ramBaseGfn = isGuest ? GUEST_RAM_BASE_GFN : PROCESS_RAM_BASE_GFN;
    if (isGuest) {
      // Growable so max_mem can rise later; the OS backs only what is touched.
      this.ram = new GrowableSab(0, { maxByteLength: GUEST_RAM_WINDOW_PAGES * XEN_PAGE_SIZE });
    }
  }

  /** tot_pages: RAM pages populated (grant frames excluded). */
  get totPages(): number {
    return this.ramPages;
  }

  page(gfn: number): Page | undefined {
    return this.p2m.get(gfn);
  }

  isRamGfn(gfn: number): boolean {
    if (this.isGuest) return gfn >= this.ramBaseGfn && gfn < this.ramBaseGfn + GUEST_RAM_WINDOW_PAGES;
    return gfn >= this.ramBaseGfn && gfn < GNTTAB_FRAMES_BASE_GFN;
  }

  /** Populate one gfn with a zeroed page; ENOMEM past max_mem or the host, EINVAL outside RAM, EEXIST if there. */
  populate(gfn: number): Page {
    if (!this.isRamGfn(gfn)) throw new XenError('EINVAL', `${this.who}: gfn 0x${gfn.toString(16)} is not a RAM frame`);
    if (this.p2m.has(gfn)) throw new XenError('EEXIST', `${this.who}: gfn 0x${gfn.toString(16)} is already populated`);
    if (this.ramPages >= this.maxPages) throw new XenError('ENOMEM', `${this.who}: max_mem reached (${this.maxPages} pages)`);
    this.host.claim(1, this.who);
    const page = this.isGuest ? this.guestPage(gfn) : Page.fresh();
    this.p2m.set(gfn, page);
    this.ramPages++;
    return page;
  }

  /** The lowest `n` unpopulated RAM gfns. */
  freeGfns(n: number): number[] {
    const out: number[] = [];
    for (let gfn = this.ramBaseGfn; out.length < n && this.isRamGfn(gfn); gfn++) if (!this.p2m.has(gfn)) out.push(gfn);
    return out;
  }

  /** Remove a page from the p2m (balloon out / teardown); returns it so its mirrors can be revoked. */
  release(gfn: number): Page {
    const page = this.p2m.get(gfn);
    if (!page) throw new XenError('ENOENT', `${this.who}: gfn 0x${gfn.toString(16)} is not populated`);
    if (!this.isRamGfn(gfn)) throw new XenError('EINVAL', `${this.who}: gfn 0x${gfn.toString(16)} is not RAM`);
    if (page.pins > 0) throw new XenError('EBUSY', `${this.who}: gfn 0x${gfn.toString(16)} is mapped through a grant`);
    this.p2m.delete(gfn);
    this.ramPages--;
    this.host.release(1);
    page.bytes.fill(0); // scrub, so the next owner of the slot sees zeroes
    return page;
  }

  /** Place a hypervisor page (a grant frame) at `gfn`. */
  placeSpecial(gfn: number, page: Page): void {
    this.host.claim(1, this.who);
    this.p2m.set(gfn, page);
  }

  /**
   * Put `page` where a special page was (a grant frame the guest placed in
   * its RAM): the slot keeps its host accounting, so teardown stays even.
   */
  replaceSpecial(gfn: number, page: Page): void {
    if (!this.p2m.has(gfn)) throw new XenError('EINVAL', `${this.who}: no special page at gfn 0x${gfn.toString(16)}`);
    this.p2m.set(gfn, page);
  }

  /** Free everything (domain destruction); returns the pages so their mirrors can be revoked. */
  teardown(): Page[] {
    const pages = [...this.p2m.values()];
    this.host.release(this.p2m.size);
    this.p2m.clear();
    this.ramPages = 0;
    return pages;
  }

  private guestPage(gfn: number): Page {
    const ram = this.ram as GrowableSab;
    const offset = (gfn - this.ramBaseGfn) * XEN_PAGE_SIZE;
    if (ram.byteLength < offset + XEN_PAGE_SIZE) ram.grow(offset + XEN_PAGE_SIZE);
    return new Page(new Uint8Array(ram, offset, XEN_PAGE_SIZE), true);
  }
}

/** max_mem in KiB -> pages, as XEN_DOMCTL_max_mem does (rounding up). */
export function kbToPages(kb: number): number {
  return Math.ceil((kb * 1024) / XEN_PAGE_SIZE);
}
