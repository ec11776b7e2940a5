/**
 * A domain's grant table, v1 (xen/common/grant_table.c).
 *
 * The shared part is real grant_entry_v1 bytes in frames of the granting
 * domain's memory (at GNTTAB_FRAMES_BASE_GFN in its p2m), written by the
 * granter.  The hypervisor keeps, as Xen does, an active entry per pinned
 * ref (who has it mapped, how many times, read or write) and a maptrack per
 * mapping domain (handle -> granter, ref, flags).
 *
 * A guest may place its frames in its own RAM (XENMAPSPACE_grant_table,
 * placeFrame()); its vCPUs then write entries there directly and the flag
 * updates here are atomic.
 */
import {
  GNTTAB_FRAMES_BASE_GFN,
  GNTTAB_MAX_FRAMES_DEFAULT,
  GNTTAB_MAX_MAPTRACK_FRAMES_DEFAULT,
  GRANT_ENTRIES_PER_FRAME,
  GRANT_ENTRY_V1_SIZE,
  MAPTRACK_PER_FRAME,
  XenError,
  type DomId,
  type GrantEntryV1,
} from '@xenbox/abi';
import type { DomainMemory } from './memory.js';
import type { Mirror } from './mirror.js';
import { Page } from './page.js';

/** Pin counts of one active grant (GNTPIN_hst{r,w}, GNTPIN_dev{r,w}). */
export interface ActiveGrant {
  /** The domain that has it pinned (a v1 grant is for one domain). */
  mapper: DomId;
  page: Page;
  readPins: number;
  writePins: number;
}

/** A maptrack entry: one mapping this domain made of someone else's grant. */
export interface Mapping {
  granter: DomId;
  ref: number;
  flags: number;
  /** The holder's copy of the page, for a process mapper. */
  mirror: Mirror | null;
}

/** The u16 flags of the entry at `off` in a guest RAM page, for Atomics. */
function flagsWord(page: Page, off: number): Uint16Array {
  return new Uint16Array(page.bytes.buffer, page.bytes.byteOffset + off, 1);
}

export class GrantTable {
  private readonly frames: Page[] = [];
  readonly active = new Map<number, ActiveGrant>();
  private readonly maptrack = new Map<number, Mapping>();
  private readonly freeHandles: number[] = [];
  private nextHandle = 0;

  constructor(
    private readonly memory: DomainMemory,
    public maxFrames = GNTTAB_MAX_FRAMES_DEFAULT,
    public maxMaptrackFrames = GNTTAB_MAX_MAPTRACK_FRAMES_DEFAULT,
  ) {}

  get nrFrames(): number {
    return this.frames.length;
  }

  /** nr_grant_entries() for v1. */
  get nrEntries(): number {
    return this.frames.length * GRANT_ENTRIES_PER_FRAME;
  }

  get maptrackLimit(): number {
    return this.maxMaptrackFrames * MAPTRACK_PER_FRAME;
  }

  /** Where a guest placed frame i with XENMAPSPACE_grant_table (a gfn in its RAM). */
  private readonly placedAt: number[] = [];

  /** gfn of frame i in the owner's p2m: where the guest placed it, else xenbox's fixed place. */
  frameGfn(i: number): number {
    return this.placedAt[i] ?? GNTTAB_FRAMES_BASE_GFN + i;
  }

  /**
   * XENMAPSPACE_grant_table (gnttab_map_frame(), grant_table.c): frame i (the
   * table grows to it if need be) now lives in the guest RAM page at `gfn`,
   * which the guest writes its entries into; what the frame held is carried
   * over, and the entries are read from that page from now on.
   */
  placeFrame(i: number, gfn: number, page: Page): void {
    if (i >= this.frames.length) this.grow(i + 1);
    const old = this.frames[i]!;
    if (old !== page) page.write(0, old.bytes);
    this.frames[i] = page;
    this.views[i] = undefined; // the DataView is of the old page
    this.placedAt[i] = gfn;
    this.memory.replaceSpecial(GNTTAB_FRAMES_BASE_GFN + i, page);
  }

  /** gnttab_grow_table(): frames only ever grow; ENOMEM if the host is full. */
  grow(nrFrames: number): void {
    if (nrFrames > this.maxFrames) throw new XenError('EINVAL', `grant table: ${nrFrames} frames exceeds max_grant_frames ${this.maxFrames}`);
    while (this.frames.length < nrFrames) {
      const page = Page.fresh();
      this.memory.placeSpecial(this.frameGfn(this.frames.length), page);
      this.frames.push(page);
    }
  }

  framePage(i: number): Page | undefined {
    return this.frames[i];
  }

  /** A DataView per frame, made once: entry access is on every map and copy. */
  private readonly views: Array<DataView | undefined> = [];

  private frameView(ref: number): DataView {
    const i = (ref / GRANT_ENTRIES_PER_FRAME) | 0;
    let dv = this.views[i];
    if (dv === undefined) {
      const page = this.frames[i]!;
      this.views[i] = dv = new DataView(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength);
    }
    return dv;
  }

  /** The shared entry for `ref` (caller checked ref < nrEntries). */
  entry(ref: number): GrantEntryV1 {
    const dv = this.frameView(ref);
    const off = (ref % GRANT_ENTRIES_PER_FRAME) * GRANT_ENTRY_V1_SIZE;
    return { flags: dv.getUint16(off, true), domid: dv.getUint16(off + 2, true), frame: dv.getUint32(off + 4, true) };
  }

  /** Set (or clear) GTF_reading/GTF_writing bits in the shared flags, as Xen's cmpxchg does. */
  setFlags(ref: number, bits: number): void {
    const page = this.frames[(ref / GRANT_ENTRIES_PER_FRAME) | 0]!;
    const off = (ref % GRANT_ENTRIES_PER_FRAME) * GRANT_ENTRY_V1_SIZE;
    if (page.volatile) Atomics.or(flagsWord(page, off), 0, bits); // a guest's vCPU may change the entry meanwhile
    else {
      const dv = this.frameView(ref);
      dv.setUint16(off, dv.getUint16(off, true) | bits, true);
    }
    page.touch();
  }

  clearFlags(ref: number, bits: number): void {
    const page = this.frames[(ref / GRANT_ENTRIES_PER_FRAME) | 0]!;
    const off = (ref % GRANT_ENTRIES_PER_FRAME) * GRANT_ENTRY_V1_SIZE;
    if (page.volatile) {
      if ((Atomics.and(flagsWord(page, off), 0, ~bits & 0xffff) & bits) === 0) return;
    } else {
      const dv = this.frameView(ref);
      const old = dv.getUint16(off, true);
      if ((old & bits) === 0) return;
      dv.setUint16(off, old & ~bits, true);
    }
    page.touch();
  }

  // ---- maptrack (the mapping side) ----

  /** get_maptrack_handle(): a free handle, or null when the maptrack is full. */
  allocHandle(): number | null {
    const h = this.freeHandles.pop();
    if (h !== undefined) return h;
    if (this.nextHandle >= this.maptrackLimit) return null;
    return this.nextHandle++;
  }

  putHandle(handle: number): void {
    this.maptrack.delete(handle);
    this.freeHandles.push(handle);
  }

  setMapping(handle: number, m: Mapping): void {
    this.maptrack.set(handle, m);
  }

  mapping(handle: number): Mapping | undefined {
    return this.maptrack.get(handle);
  }

  mappings(): Array<[number, Mapping]> {
    return [...this.maptrack.entries()];
  }

  get mappedCount(): number {
    return this.maptrack.size;
  }
}
