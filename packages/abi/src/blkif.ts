/**
 * The block interface (xen/include/public/io/blkif.h): operations, statuses,
 * the backend's `info` bits, and the byte layouts of the ring entries.
 *
 * Layouts are the 64-bit ones (x86_64, Arm, and RV64, which lay C structs out
 * the same way): a u64 is 8-byte aligned, so there is a 4-byte hole before
 * `id` in every request (i386's layout has none; see blkif_x86_32_request in
 * Linux's drivers/block/xen-blkback/common.h).
 *
 *   blkif_request            op u8 @0, nr_segments u8 @1, handle u16 @2, (hole @4),
 *                            id u64 @8, sector_number u64 @16, seg[11] @24 (8 B each)
 *   blkif_request_segment    gref u32 @0, first_sect u8 @4, last_sect u8 @5, (pad 2)
 *   blkif_request_discard    op @0, flag u8 @1, handle u16 @2, id @8, sector_number @16,
 *                            nr_sectors u64 @24
 *   blkif_request_indirect   op @0 (=6), indirect_op u8 @1, nr_segments u16 @2, id @8,
 *                            sector_number @16, handle u16 @24, (pad 2),
 *                            indirect_grefs u32[8] @28
 *   blkif_response           id u64 @0, operation u8 @8, (pad), status i16 @10
 *
 * A ring slot is the union of request and response: 112 bytes, 32 slots in a
 * 4 KiB page.  Sectors on the ring are always 512 bytes, whatever the
 * backend's `sector-size`.
 */
import { XEN_PAGE_SIZE } from './memory.js';
import { ringSize } from './ring.js';
import { XenError } from './errno.js';

export const BLKIF_OP_READ = 0;
export const BLKIF_OP_WRITE = 1;
export const BLKIF_OP_WRITE_BARRIER = 2;
export const BLKIF_OP_FLUSH_DISKCACHE = 3;
export const BLKIF_OP_RESERVED_1 = 4;
export const BLKIF_OP_DISCARD = 5;
export const BLKIF_OP_INDIRECT = 6;

export const BLKIF_RSP_EOPNOTSUPP = -2;
export const BLKIF_RSP_ERROR = -1;
export const BLKIF_RSP_OKAY = 0;

/** blkif_request_discard.flag: the frontend asks for a secure erase. */
export const BLKIF_DISCARD_SECURE = 1;

/** Bits of the backend's `info` key (vdisk_info). */
export const VDISK_CDROM = 0x1;
export const VDISK_REMOVABLE = 0x2;
export const VDISK_READONLY = 0x4;

export const BLKIF_MAX_SEGMENTS_PER_REQUEST = 11;
export const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8;
/** What Linux blkback offers as feature-max-indirect-segments (MAX_INDIRECT_SEGMENTS, common.h). */
export const BLKIF_MAX_INDIRECT_SEGMENTS = 256;

/** The ring's sector unit (blkif.h: "sector_number ... in 512-byte units"). */
export const BLKIF_SECTOR_SIZE = 512;
/** Sectors in one page: first_sect/last_sect lie in 0..7. */
export const BLKIF_SECTORS_PER_PAGE = XEN_PAGE_SIZE / BLKIF_SECTOR_SIZE;

export const BLKIF_SEGMENT_SIZE = 8;
/** Segment descriptors one indirect page holds (SEGS_PER_INDIRECT_FRAME). */
export const BLKIF_SEGS_PER_INDIRECT_FRAME = XEN_PAGE_SIZE / BLKIF_SEGMENT_SIZE;

export const BLKIF_REQUEST_SIZE = 112;
export const BLKIF_RESPONSE_SIZE = 16;
/** sizeof(union blkif_sring_entry) */
export const BLKIF_RING_ENTRY_SIZE = BLKIF_REQUEST_SIZE;
/** __CONST_RING_SIZE(blkif, 4096) */
export const BLKIF_RING_SIZE = ringSize(BLKIF_RING_ENTRY_SIZE, XEN_PAGE_SIZE);

/**
 * Values of the frontend's `protocol` key (xen/include/public/io/protocols.h)
 * whose layout is the one above; an absent key means the backend's native one.
 * "x86_32-abi" (no hole before `id`) is not served.
 */
export const BLKIF_PROTOCOLS_64BIT = ['x86_64-abi', 'arm-abi'] as const;
export const XEN_IO_PROTO_ABI_X86_32 = 'x86_32-abi';

/** How many indirect pages `nseg` descriptors need (INDIRECT_PAGES). */
export function blkifIndirectPages(nseg: number): number {
  return Math.ceil(nseg / BLKIF_SEGS_PER_INDIRECT_FRAME);
}

export interface BlkifSegment {
  gref: number;
  firstSect: number;
  lastSect: number;
}

/** A request as decoded from a private copy of a ring slot. */
export type BlkifRequest =
  | { kind: 'rw'; operation: number; nrSegments: number; handle: number; id: bigint; sector: number; segments: BlkifSegment[] }
  | { kind: 'discard'; operation: typeof BLKIF_OP_DISCARD; flag: number; handle: number; id: bigint; sector: number; nrSectors: number }
  | { kind: 'indirect'; operation: typeof BLKIF_OP_INDIRECT; indirectOp: number; nrSegments: number; handle: number; id: bigint; sector: number; indirectGrefs: number[] }
  | { kind: 'other'; operation: number; id: bigint };

export interface BlkifResponse {
  id: bigint;
  operation: number;
  status: number;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A u64 as a JS number: exact below 2^53; above that it is only ever compared with disk sizes, which are far smaller. */
function u64(dv: DataView, off: number): number {
  return dv.getUint32(off + 4, true) * 0x1_0000_0000 + dv.getUint32(off, true);
}

function setU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v >>> 0, true);
  dv.setUint32(off + 4, Math.floor(v / 0x1_0000_0000) >>> 0, true);
}

export function decodeBlkifSegment(b: Uint8Array, off: number): BlkifSegment {
  const dv = view(b);
  return { gref: dv.getUint32(off, true), firstSect: dv.getUint8(off + 4), lastSect: dv.getUint8(off + 5) };
}

export function encodeBlkifSegment(out: Uint8Array, off: number, s: BlkifSegment): void {
  const dv = view(out);
  dv.setUint32(off, s.gref >>> 0, true);
  dv.setUint8(off + 4, s.firstSect);
  dv.setUint8(off + 5, s.lastSect);
  dv.setUint16(off + 6, 0, true);
}

/**
 * Decode a request from a private copy of its slot (never from the shared
 * page: RING_COPY_REQUEST).  Only the layout is interpreted here; whether
 * the values make sense is the backend's to check.  `nr_segments` of a
 * read/write is clamped to the 11 slots the struct has, so a lying count
 * cannot make the decoder read past the entry (the backend refuses it using
 * the raw `nrSegments`).
 */
export function decodeBlkifRequest(b: Uint8Array): BlkifRequest {
  if (b.length < BLKIF_REQUEST_SIZE) throw new XenError('EINVAL', `blkif request of ${b.length} bytes; a slot holds ${BLKIF_REQUEST_SIZE}`);
  const dv = view(b);
  const operation = dv.getUint8(0);
  const id = dv.getBigUint64(8, true);
  switch (operation) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
    case BLKIF_OP_WRITE_BARRIER:
    case BLKIF_OP_FLUSH_DISKCACHE: {
      const nrSegments = dv.getUint8(1);
      const segments: BlkifSegment[] = [];
      for (let i = 0; i < Math.min(nrSegments, BLKIF_MAX_SEGMENTS_PER_REQUEST); i++) segments.push(decodeBlkifSegment(b, 24 + i * BLKIF_SEGMENT_SIZE));
      return { kind: 'rw', operation, nrSegments, handle: dv.getUint16(2, true), id, sector: u64(dv, 16), segments };
    }
    case BLKIF_OP_DISCARD:
      return { kind: 'discard', operation, flag: dv.getUint8(1), handle: dv.getUint16(2, true), id, sector: u64(dv, 16), nrSectors: u64(dv, 24) };
    case BLKIF_OP_INDIRECT: {
      const indirectGrefs: number[] = [];
      for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) indirectGrefs.push(dv.getUint32(28 + i * 4, true));
      return { kind: 'indirect', operation, indirectOp: dv.getUint8(1), nrSegments: dv.getUint16(2, true), handle: dv.getUint16(24, true), id, sector: u64(dv, 16), indirectGrefs };
    }
    default:
      return { kind: 'other', operation, id };
  }
}

/** Encode a read/write/flush request (blkif_request) into a fresh slot-sized buffer. */
export function encodeBlkifRequest(r: { operation: number; handle: number; id: bigint; sector: number; segments: BlkifSegment[]; nrSegments?: number }): Uint8Array {
  if (r.segments.length > BLKIF_MAX_SEGMENTS_PER_REQUEST) throw new XenError('E2BIG', `${r.segments.length} segments; a direct request holds ${BLKIF_MAX_SEGMENTS_PER_REQUEST}`);
  const b = new Uint8Array(BLKIF_REQUEST_SIZE);
  const dv = view(b);
  dv.setUint8(0, r.operation);
  dv.setUint8(1, r.nrSegments ?? r.segments.length);
  dv.setUint16(2, r.handle, true);
  dv.setBigUint64(8, BigInt.asUintN(64, r.id), true);
  setU64(dv, 16, r.sector);
  r.segments.forEach((s, i) => encodeBlkifSegment(b, 24 + i * BLKIF_SEGMENT_SIZE, s));
  return b;
}

export function encodeBlkifDiscard(r: { handle: number; id: bigint; sector: number; nrSectors: number; flag?: number }): Uint8Array {
  const b = new Uint8Array(BLKIF_REQUEST_SIZE);
  const dv = view(b);
  dv.setUint8(0, BLKIF_OP_DISCARD);
  dv.setUint8(1, r.flag ?? 0);
  dv.setUint16(2, r.handle, true);
  dv.setBigUint64(8, BigInt.asUintN(64, r.id), true);
  setU64(dv, 16, r.sector);
  setU64(dv, 24, r.nrSectors);
  return b;
}

export function encodeBlkifIndirect(r: { indirectOp: number; nrSegments: number; handle: number; id: bigint; sector: number; indirectGrefs: number[] }): Uint8Array {
  if (r.indirectGrefs.length > BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST) throw new XenError('E2BIG', `${r.indirectGrefs.length} indirect pages; at most ${BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST}`);
  const b = new Uint8Array(BLKIF_REQUEST_SIZE);
  const dv = view(b);
  dv.setUint8(0, BLKIF_OP_INDIRECT);
  dv.setUint8(1, r.indirectOp);
  dv.setUint16(2, r.nrSegments, true);
  dv.setBigUint64(8, BigInt.asUintN(64, r.id), true);
  setU64(dv, 16, r.sector);
  dv.setUint16(24, r.handle, true);
  r.indirectGrefs.forEach((g, i) => dv.setUint32(28 + i * 4, g >>> 0, true));
  return b;
}

/** Any operation code with an id (for hostile tests and unknown ops: blkif_request_other). */
export function encodeBlkifOther(operation: number, id: bigint): Uint8Array {
  const b = new Uint8Array(BLKIF_REQUEST_SIZE);
  const dv = view(b);
  dv.setUint8(0, operation);
  dv.setBigUint64(8, BigInt.asUintN(64, id), true);
  return b;
}

export function encodeBlkifResponse(r: BlkifResponse): Uint8Array {
  const b = new Uint8Array(BLKIF_RESPONSE_SIZE);
  const dv = view(b);
  dv.setBigUint64(0, BigInt.asUintN(64, r.id), true);
  dv.setUint8(8, r.operation);
  dv.setInt16(10, r.status, true);
  return b;
}

export function decodeBlkifResponse(b: Uint8Array): BlkifResponse {
  if (b.length < BLKIF_RESPONSE_SIZE) throw new XenError('EINVAL', `blkif response of ${b.length} bytes; one is ${BLKIF_RESPONSE_SIZE}`);
  const dv = view(b);
  return { id: dv.getBigUint64(0, true), operation: dv.getUint8(8), status: dv.getInt16(10, true) };
}

/** Bytes one segment moves: (last - first + 1) sectors. */
export function blkifSegmentBytes(s: BlkifSegment): number {
  return (s.lastSect - s.firstSect + 1) * BLKIF_SECTOR_SIZE;
}

const OP_NAMES: Record<number, string> = {
  [BLKIF_OP_READ]: 'read',
  [BLKIF_OP_WRITE]: 'write',
  [BLKIF_OP_WRITE_BARRIER]: 'write-barrier',
  [BLKIF_OP_FLUSH_DISKCACHE]: 'flush-diskcache',
  [BLKIF_OP_RESERVED_1]: 'reserved-1',
  [BLKIF_OP_DISCARD]: 'discard',
  [BLKIF_OP_INDIRECT]: 'indirect',
};

export function blkifOpName(op: number): string {
  return OP_NAMES[op] ?? `unknown op ${op}`;
}

/**
 * Per-vbd counters blkback publishes under `<backend dir>/statistics/`
 * once a second (xenbox's stand-in for Linux blkback's sysfs
 * `statistics/` files, which xentop reads): the same names.
 */
export const BLKIF_STATS_DIR = 'statistics';
export const BLKIF_STAT_NAMES = ['oo_req', 'rd_req', 'wr_req', 'f_req', 'ds_req', 'rd_sect', 'wr_sect'] as const;
export type BlkifStatName = (typeof BLKIF_STAT_NAMES)[number];
