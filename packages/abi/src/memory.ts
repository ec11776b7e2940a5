/**
 * Pseudo-physical memory ABI (xen/include/public/memory.h, xen.h).
 *
 * Every domain's memory lives in the hypervisor: guests' RAM is a
 * SharedArrayBuffer with a p2m, process domains get small on-demand memory
 * so they can grant their own pages.  Frames are named by guest frame
 * number (gfn); a page is XEN_PAGE_SIZE bytes.
 */
export const XEN_PAGE_SHIFT = 12;
export const XEN_PAGE_SIZE = 1 << XEN_PAGE_SHIFT;

/** XENMEM_* sub-op numbers (memory.h), for reference and for guests' hypercalls. */
export const XENMEM = {
  increase_reservation: 0,
  decrease_reservation: 1,
  maximum_ram_page: 2,
  current_reservation: 3,
  maximum_reservation: 4,
  machphys_mfn_list: 5,
  populate_physmap: 6,
  add_to_physmap: 7,
} as const;

/** Guest RAM starts at 0x8000_0000 on the RISC-V `virt` board (DESIGN §7): gfn 0x80000. */
export const GUEST_RAM_BASE_GFN = 0x80000;
/** Process domains' own memory starts at gfn 0 and grows on demand. */
export const PROCESS_RAM_BASE_GFN = 0;
/**
 * Where a domain's grant-table frames appear in its p2m (as Xen's
 * XENMAPSPACE_grant_table puts them where the guest asks; xenbox picks a
 * fixed place above any RAM so a process can map them like its own pages).
 */
export const GNTTAB_FRAMES_BASE_GFN = 0xf000_0000;
/** Largest gfn accepted anywhere (a 32-bit frame field of grant_entry_v1). */
export const GFN_MAX = 0xffff_ffff;

/** Most frames one memory op may name (Xen preempts long ops; xenbox bounds them). */
export const MEMORY_OP_MAX_EXTENTS = 4096;

/** Default max_mem of a process domain, in KiB: 16 MiB is plenty for rings and buffers. */
export const PROCESS_DEFAULT_MAX_MEM_KB = 16 * 1024;
/** Default max_mem of a guest without one, in KiB (xl's default `memory = 128`). */
export const GUEST_DEFAULT_MAX_MEM_KB = 128 * 1024;

export interface PopulatePhysmapArgs {
  /** Target domain (DOMID_SELF 0x7ff0 or the caller's own id; others need privilege). */
  domid: number;
  gfns: number[];
}
export interface ReservationReply {
  /** How many extents were done; fewer than asked means the next one failed (Xen's return value). */
  done: number;
}
export interface IncreaseReservationArgs {
  domid: number;
  nr_extents: number;
}
export interface IncreaseReservationReply {
  /** The gfns populated, lowest free first. */
  gfns: number[];
}
export interface DecreaseReservationArgs {
  domid: number;
  gfns: number[];
}

/** Reading and writing one's own pages (the process equivalent of a load/store). */
export interface MemoryReadArgs {
  gfn: number;
  offset?: number;
  len?: number;
}
export interface MemoryWriteArgs {
  gfn: number;
  offset: number;
  data: Uint8Array;
}
/** Compare-and-exchange of an aligned 16/32-bit little-endian value in one's own page (what a guest does with cmpxchg). */
export interface MemoryCmpxchgArgs {
  gfn: number;
  offset: number;
  size: 2 | 4;
  expected: number;
  value: number;
}
/** privcmd-style foreign access: dom0, or a stub domain over its target. */
export interface ForeignReadArgs {
  domid: number;
  gfn: number;
  offset?: number;
  len?: number;
}
export interface ForeignWriteArgs {
  domid: number;
  gfn: number;
  offset: number;
  data: Uint8Array;
}

/**
 * Mirrors (DESIGN §4): a process holds a copy of a page it may use — one of
 * its own, or a grant it mapped.  It publishes its writes with `mirror.flush`
 * (before it notifies), and the hypervisor sends `mirror.refresh` before it
 * delivers an event, so the copy is current whenever the ring protocol looks.
 * `mirror.sync` is a full barrier: flush, then fetch what changed.
 */
export interface MirrorWrite {
  mid: number;
  offset: number;
  data: Uint8Array;
}
export interface MirrorPageData {
  mid: number;
  data: Uint8Array;
}
export interface MirrorMapOwnArgs {
  gfns: number[];
}
export interface MirrorMapOwnReply {
  pages: Array<{ mid: number; gfn: number; data: Uint8Array }>;
}
export interface MirrorFlushArgs {
  writes: MirrorWrite[];
}
export interface MirrorSyncArgs {
  writes?: MirrorWrite[];
  /** Mirrors to bring up to date; only those that changed come back. */
  mids: number[];
}
export interface MirrorSyncReply {
  pages: MirrorPageData[];
}
export interface MirrorRefreshEvent {
  pages: MirrorPageData[];
}
export interface MirrorRevokedEvent {
  mids: number[];
  reason: string;
}
