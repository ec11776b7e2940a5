/**
 * Virtio 1.2 (OASIS virtio-v1.2-cs01): the device status bits, the generic
 * feature bits, the split virtqueue's byte layouts (§2.7, Linux's
 * include/uapi/linux/virtio_ring.h) and the block device's (§5.2,
 * include/uapi/linux/virtio_blk.h).  All fields are little-endian (a
 * modern, VERSION_1 device).
 *
 *   virtq_desc        addr u64 @0, len u32 @8, flags u16 @12, next u16 @14    (16 B)
 *   virtq_avail       flags u16 @0, idx u16 @2, ring[num] u16 @4,
 *                     used_event u16 @4+2*num  (only with VIRTIO_F_EVENT_IDX)
 *   virtq_used        flags u16 @0, idx u16 @2, ring[num] {id u32, len u32} @4,
 *                     avail_event u16 @4+8*num (only with VIRTIO_F_EVENT_IDX)
 *
 *   virtio_blk_req    type u32 @0, reserved u32 @4, sector u64 @8 (16 B header),
 *                     then the data, then status u8 (device-writable, last)
 *   virtio_blk_config capacity u64 @0, size_max u32 @8, seg_max u32 @12,
 *                     geometry {cylinders u16 @16, heads u8 @18, sectors u8 @19},
 *                     blk_size u32 @20, topology {physical_block_exp u8 @24,
 *                     alignment_offset u8 @25, min_io_size u16 @26, opt_io_size u32 @28},
 *                     writeback u8 @32, (unused u8 @33), num_queues u16 @34,
 *                     max_discard_sectors u32 @36, max_discard_seg u32 @40,
 *                     discard_sector_alignment u32 @44, max_write_zeroes_sectors u32 @48,
 *                     max_write_zeroes_seg u32 @52, write_zeroes_may_unmap u8 @56
 *   virtio_blk_discard_write_zeroes  sector u64 @0, num_sectors u32 @8, flags u32 @12 (16 B)
 */

/** Device IDs (§5). */
export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;

/** Device status field bits (§2.1). */
export const VIRTIO_STATUS_ACKNOWLEDGE = 1;
export const VIRTIO_STATUS_DRIVER = 2;
export const VIRTIO_STATUS_DRIVER_OK = 4;
export const VIRTIO_STATUS_FEATURES_OK = 8;
export const VIRTIO_STATUS_DEVICE_NEEDS_RESET = 64;
export const VIRTIO_STATUS_FAILED = 128;

/** Interrupt status bits of a transport (§4.2.2: InterruptStatus). */
export const VIRTIO_INT_USED_BUFFER = 1;
export const VIRTIO_INT_CONFIG_CHANGE = 2;

/** Reserved (device-independent) feature bits (§6), as masks. */
export const VIRTIO_F_INDIRECT_DESC = 1n << 28n;
export const VIRTIO_F_EVENT_IDX = 1n << 29n;
export const VIRTIO_F_VERSION_1 = 1n << 32n;
export const VIRTIO_F_ACCESS_PLATFORM = 1n << 33n;

/** Split virtqueue (§2.7). */
export const VIRTQ_DESC_SIZE = 16;
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;
export const VIRTQ_USED_ELEM_SIZE = 8;
/** The largest queue size a split virtqueue may have (§2.7: Queue Size is at most 32768). */
export const VIRTQ_MAX_SIZE = 32768;

/** Offsets inside the driver area (virtq_avail) of a queue of `num` entries. */
export const virtqAvail = {
  FLAGS: 0,
  IDX: 2,
  ring: (i: number): number => 4 + 2 * i,
  usedEvent: (num: number): number => 4 + 2 * num,
  /** Bytes of the area, used_event included. */
  size: (num: number): number => 6 + 2 * num,
} as const;

/** Offsets inside the device area (virtq_used) of a queue of `num` entries. */
export const virtqUsed = {
  FLAGS: 0,
  IDX: 2,
  ring: (i: number): number => 4 + VIRTQ_USED_ELEM_SIZE * i,
  availEvent: (num: number): number => 4 + VIRTQ_USED_ELEM_SIZE * num,
  size: (num: number): number => 6 + VIRTQ_USED_ELEM_SIZE * num,
} as const;

/** One descriptor of the table (or of an indirect table). */
export interface VirtqDesc {
  addr: bigint;
  len: number;
  flags: number;
  next: number;
}

export function decodeVirtqDesc(b: Uint8Array, off = 0): VirtqDesc {
  const dv = new DataView(b.buffer, b.byteOffset + off, VIRTQ_DESC_SIZE);
  return { addr: dv.getBigUint64(0, true), len: dv.getUint32(8, true), flags: dv.getUint16(12, true), next: dv.getUint16(14, true) };
}

export function encodeVirtqDesc(d: VirtqDesc): Uint8Array {
  const b = new Uint8Array(VIRTQ_DESC_SIZE);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, d.addr, true);
  dv.setUint32(8, d.len, true);
  dv.setUint16(12, d.flags, true);
  dv.setUint16(14, d.next, true);
  return b;
}

/**
 * vring_need_event (virtio_ring.h): with VIRTIO_F_EVENT_IDX, notify when the
 * index moved from `old` to `next` past `event` (all mod 2^16).
 */
export function vringNeedEvent(event: number, next: number, old: number): boolean {
  return ((next - event - 1) & 0xffff) < ((next - old) & 0xffff);
}

/** Block device feature bits (§5.2.3), as masks. */
export const VIRTIO_BLK_F_SIZE_MAX = 1n << 1n;
export const VIRTIO_BLK_F_SEG_MAX = 1n << 2n;
export const VIRTIO_BLK_F_GEOMETRY = 1n << 4n;
export const VIRTIO_BLK_F_RO = 1n << 5n;
export const VIRTIO_BLK_F_BLK_SIZE = 1n << 6n;
export const VIRTIO_BLK_F_FLUSH = 1n << 9n;
export const VIRTIO_BLK_F_TOPOLOGY = 1n << 10n;
export const VIRTIO_BLK_F_CONFIG_WCE = 1n << 11n;
export const VIRTIO_BLK_F_MQ = 1n << 12n;
export const VIRTIO_BLK_F_DISCARD = 1n << 13n;
export const VIRTIO_BLK_F_WRITE_ZEROES = 1n << 14n;

/** virtio_blk_req.type (§5.2.6). */
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_GET_LIFETIME = 10;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_SECURE_ERASE = 14;

/** virtio_blk_req.status. */
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

/** The header the driver puts first in every request. */
export const VIRTIO_BLK_REQ_HDR_SIZE = 16;
/** Sectors in virtio_blk_req.sector and capacity are always 512 bytes (§5.2.6). */
export const VIRTIO_BLK_SECTOR_SIZE = 512;
/** GET_ID answers with a serial of this many bytes, NUL-padded (VIRTIO_BLK_ID_BYTES). */
export const VIRTIO_BLK_ID_BYTES = 20;
export const VIRTIO_BLK_DISCARD_SEG_SIZE = 16;

/** virtio_blk_config field offsets (the device-specific config space). */
export const VIRTIO_BLK_CONFIG = {
  CAPACITY: 0,
  SIZE_MAX: 8,
  SEG_MAX: 12,
  GEOMETRY_CYLINDERS: 16,
  GEOMETRY_HEADS: 18,
  GEOMETRY_SECTORS: 19,
  BLK_SIZE: 20,
  PHYSICAL_BLOCK_EXP: 24,
  ALIGNMENT_OFFSET: 25,
  MIN_IO_SIZE: 26,
  OPT_IO_SIZE: 28,
  WRITEBACK: 32,
  NUM_QUEUES: 34,
  MAX_DISCARD_SECTORS: 36,
  MAX_DISCARD_SEG: 40,
  DISCARD_SECTOR_ALIGNMENT: 44,
  MAX_WRITE_ZEROES_SECTORS: 48,
  MAX_WRITE_ZEROES_SEG: 52,
  WRITE_ZEROES_MAY_UNMAP: 56,
  /** Bytes of the structure as QEMU exposes it. */
  SIZE: 60,
} as const;

export interface VirtioBlkReqHeader {
  type: number;
  sector: bigint;
}

export function decodeVirtioBlkReqHeader(b: Uint8Array): VirtioBlkReqHeader {
  const dv = new DataView(b.buffer, b.byteOffset, VIRTIO_BLK_REQ_HDR_SIZE);
  return { type: dv.getUint32(0, true), sector: dv.getBigUint64(8, true) };
}

export function encodeVirtioBlkReqHeader(h: VirtioBlkReqHeader): Uint8Array {
  const b = new Uint8Array(VIRTIO_BLK_REQ_HDR_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, h.type, true);
  dv.setBigUint64(8, h.sector, true);
  return b;
}

export interface VirtioBlkDiscardSeg {
  sector: bigint;
  numSectors: number;
  flags: number;
}

export function decodeVirtioBlkDiscardSeg(b: Uint8Array, off = 0): VirtioBlkDiscardSeg {
  const dv = new DataView(b.buffer, b.byteOffset + off, VIRTIO_BLK_DISCARD_SEG_SIZE);
  return { sector: dv.getBigUint64(0, true), numSectors: dv.getUint32(8, true), flags: dv.getUint32(12, true) };
}
