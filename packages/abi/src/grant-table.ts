/**
 * Grant tables, v1 (xen/include/public/grant_table.h).
 *
 * A granting domain writes grant_entry_v1 records (flags u16 @0, domid u16
 * @2, frame u32 @4, little-endian) into its own grant-table frames; the
 * hypervisor checks every map and copy against them and answers each op of a
 * batch with a GNTST_* status, as Xen does.
 */
import { XEN_PAGE_SIZE } from './memory.js';

export type GrantRef = number;

export const GRANT_ENTRY_V1_SIZE = 8;
export const GRANT_ENTRIES_PER_FRAME = XEN_PAGE_SIZE / GRANT_ENTRY_V1_SIZE; // 512
/** Refs 0 (console) and 1 (xenstore) and up to 7 are reserved for the toolstack (GNTTAB_NR_RESERVED_ENTRIES). */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;
export const GNTTAB_RESERVED_CONSOLE = 0;
export const GNTTAB_RESERVED_XENSTORE = 1;

/** Defaults of xen/common/grant_table.c (gnttab_max_frames, gnttab_max_maptrack_frames). */
export const GNTTAB_MAX_FRAMES_DEFAULT = 64;
export const GNTTAB_MAX_MAPTRACK_FRAMES_DEFAULT = 1024;
/** struct grant_mapping is 8 bytes (flags, domid, ref), so 512 handles per maptrack frame. */
export const MAPTRACK_PER_FRAME = XEN_PAGE_SIZE / 8;
/** Most ops one batched grant call may carry. */
export const GNTTAB_MAX_BATCH = 1024;

export const GNTTABOP = {
  map_grant_ref: 0,
  unmap_grant_ref: 1,
  setup_table: 2,
  dump_table: 3,
  transfer: 4,
  copy: 5,
  query_size: 6,
  unmap_and_replace: 7,
  set_version: 8,
  get_status_frames: 9,
  get_version: 10,
  swap_grant_ref: 11,
  cache_flush: 12,
} as const;

// grant_entry_v1.flags
export const GTF_invalid = 0;
export const GTF_permit_access = 1;
export const GTF_accept_transfer = 2;
export const GTF_transitive = 3;
export const GTF_type_mask = 3;
export const GTF_readonly = 1 << 2;
export const GTF_reading = 1 << 3;
export const GTF_writing = 1 << 4;
export const GTF_PWT = 1 << 5;
export const GTF_PCD = 1 << 6;
export const GTF_PAT = 1 << 7;
export const GTF_sub_page = 1 << 8;
export const GTF_transfer_committed = 1 << 2;
export const GTF_transfer_completed = 1 << 3;

// gnttab_map_grant_ref.flags
export const GNTMAP_device_map = 1 << 0;
export const GNTMAP_host_map = 1 << 1;
export const GNTMAP_readonly = 1 << 2;
export const GNTMAP_application_map = 1 << 3;
export const GNTMAP_contains_pte = 1 << 4;

// gnttab_copy.flags
export const GNTCOPY_source_gref = 1 << 0;
export const GNTCOPY_dest_gref = 1 << 1;

export const GNTST = {
  okay: 0,
  general_error: -1,
  bad_domain: -2,
  bad_gntref: -3,
  bad_handle: -4,
  bad_virt_addr: -5,
  bad_dev_addr: -6,
  no_device_space: -7,
  permission_denied: -8,
  bad_page: -9,
  bad_copy_arg: -10,
  address_too_big: -11,
  eagain: -12,
  no_space: -13,
} as const;
export type GntStatus = (typeof GNTST)[keyof typeof GNTST];

/** GNTTABOP_error_msgs, indexed by -status. */
export const GNTTABOP_ERROR_MSGS = [
  'okay',
  'undefined error',
  'unrecognised domain id',
  'invalid grant reference',
  'invalid mapping handle',
  'invalid virtual address',
  'invalid device address',
  'no spare translation slot in the I/O MMU',
  'permission denied',
  'bad page',
  'copy arguments cross page boundary',
  'page address size too large',
  'operation not done; try again',
  'out of space',
] as const;

export function gntstMessage(status: number): string {
  return GNTTABOP_ERROR_MSGS[-status] ?? `unknown grant status ${status}`;
}

export interface GrantEntryV1 {
  flags: number;
  domid: number;
  frame: number;
}

/** Read entry `ref` of a table held as consecutive frames. */
export function readGrantEntry(frame: Uint8Array, index: number): GrantEntryV1 {
  const dv = new DataView(frame.buffer, frame.byteOffset + index * GRANT_ENTRY_V1_SIZE, GRANT_ENTRY_V1_SIZE);
  return { flags: dv.getUint16(0, true), domid: dv.getUint16(2, true), frame: dv.getUint32(4, true) };
}

/** The bytes of one grant_entry_v1. */
export function encodeGrantEntry(e: GrantEntryV1): Uint8Array {
  const b = new Uint8Array(GRANT_ENTRY_V1_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, e.flags, true);
  dv.setUint16(2, e.domid, true);
  dv.setUint32(4, e.frame, true);
  return b;
}

export interface GnttabSetupTableArgs {
  dom: number;
  nr_frames: number;
}
export interface GnttabSetupTableReply {
  status: GntStatus;
  /** gfns where the frames sit in the domain's p2m. */
  frame_list: number[];
}
export interface GnttabQuerySizeArgs {
  dom: number;
}
export interface GnttabQuerySizeReply {
  nr_frames: number;
  max_nr_frames: number;
  status: GntStatus;
}
export interface GnttabMapGrantRef {
  flags: number;
  ref: GrantRef;
  dom: number;
}
export interface GnttabMapResult {
  status: GntStatus;
  handle: number;
  /** xenbox: the mirror that holds the mapped page, and its contents now. */
  mid?: number;
  data?: Uint8Array;
}
export interface GnttabUnmapGrantRef {
  handle: number;
}
export interface GnttabUnmapResult {
  status: GntStatus;
}
/**
 * One side of a copy, as an object: a grant ref (with GNTCOPY_*_gref) or
 * one's own gfn — or, xenbox's message buffers (gnttab-copy.ts), instead of
 * `gmfn`:
 *  - `source: {bytes, domid: DOMID_SELF, offset}` — the bytes to copy, given
 *    in the call (a write into a grant, e.g. blkback answering a read);
 *    `bytes.length` must equal `len`;
 *  - `dest: {inline: true, domid: DOMID_SELF, offset}` — the copied bytes
 *    come back in that op's result as `data` (a read from a grant, e.g.
 *    blkback fetching a write's segments).
 * This is the form libxen and tests write; on the wire every op is Xen's
 * struct gnttab_copy (encodeGnttabCopy in gnttab-copy.ts).
 */
export interface GnttabCopyPtr {
  ref?: GrantRef;
  gmfn?: number;
  domid: number;
  offset: number;
  /** xenbox: source only, instead of gmfn: the bytes to copy (length `len`). */
  bytes?: Uint8Array;
  /** xenbox: dest only, instead of gmfn: return the copied bytes in the result's `data`. */
  inline?: boolean;
}
export interface GnttabCopy {
  source: GnttabCopyPtr;
  dest: GnttabCopyPtr;
  len: number;
  flags: number;
}
export interface GnttabCopyResult {
  status: GntStatus;
  /** xenbox: the copied bytes, for an op whose dest was `{inline: true}` and whose status is okay. */
  data?: Uint8Array;
}
