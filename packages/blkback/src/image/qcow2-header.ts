/**
 * The qcow2 header (QEMU docs/interop/qcow2.txt, "Header"): parsed and
 * checked before anything else in the file is trusted.  Every field that later
 * code uses to compute a file offset is range-checked here, so a hostile image
 * fails to open with a message naming the field instead of steering reads or
 * writes somewhere odd.
 */
import { XenError } from '@xenbox/abi';

/** "QFI\xfb" */
export const QCOW2_MAGIC = 0x514649fb;
/** Version 2 headers are exactly 72 bytes; version 3 at least 104. */
export const QCOW2_V2_HEADER_LENGTH = 72;
export const QCOW2_V3_MIN_HEADER_LENGTH = 104;
/** cluster_bits: at least 9 (512-byte clusters); QEMU refuses more than 21 (2 MiB). */
export const QCOW2_MIN_CLUSTER_BITS = 9;
export const QCOW2_MAX_CLUSTER_BITS = 21;
/** QEMU's implementation limits: QCOW_MAX_L1_SIZE 32 MiB, QCOW_MAX_REFTABLE_SIZE 8 MiB. */
export const QCOW2_MAX_L1_BYTES = 32 << 20;
export const QCOW2_MAX_REFTABLE_BYTES = 8 << 20;
/** The only refcount width implemented: 16-bit, the default and the only one for v2. */
export const QCOW2_REFCOUNT_ORDER = 4;

/** Byte offsets of the fields this code rewrites. */
export const HDR_REFCOUNT_TABLE_OFFSET = 48; // u64, followed by refcount_table_clusters u32 at 56
export const HDR_AUTOCLEAR_FEATURES = 88; // u64

/** incompatible_features bits. */
export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION_TYPE = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;
const INCOMPAT_NAMES: Record<number, string> = {
  0: 'dirty (lazy refcounts)',
  1: 'corrupt',
  2: 'external data file',
  3: 'non-zlib compression type',
  4: 'extended L2 entries',
};

export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  clusterSize: number;
  /** Virtual size in bytes as stored (may be any byte count). */
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
}

const bad = (path: string, what: string) => new XenError('EINVAL', `${path}: bad qcow2 header: ${what}`);
const unsupported = (path: string, what: string) => new XenError('EOPNOTSUPP', `${path}: qcow2 ${what} not supported`);

/** A u64 field that must fit a JS number (offsets: QEMU caps host offsets at 2^56). */
function u64(buf: Buffer, at: number, path: string, name: string): number {
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(path, `${name} ${v} too large`);
  return Number(v);
}

/**
 * Parse the header from the file's first bytes (at least 104, or the whole
 * file if shorter) and check it against the file size.
 */
export function parseQcow2Header(path: string, buf: Buffer, fileSize: number): Qcow2Header {
  if (buf.length < QCOW2_V2_HEADER_LENGTH) throw bad(path, `file is ${fileSize} bytes, shorter than a header`);
  if (buf.readUInt32BE(0) !== QCOW2_MAGIC) throw bad(path, 'no QFI\\xfb magic (not a qcow2 image)');
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw unsupported(path, `version ${version} (only 2 and 3)`);
  const clusterBits = buf.readUInt32BE(20);
  if (clusterBits < QCOW2_MIN_CLUSTER_BITS || clusterBits > QCOW2_MAX_CLUSTER_BITS) {
    throw bad(path, `cluster_bits ${clusterBits} out of range ${QCOW2_MIN_CLUSTER_BITS}..${QCOW2_MAX_CLUSTER_BITS}`);
  }
  const h: Qcow2Header = {
    version,
    backingFileOffset: u64(buf, 8, path, 'backing_file_offset'),
    backingFileSize: buf.readUInt32BE(16),
    clusterBits,
    clusterSize: 2 ** clusterBits,
    size: u64(buf, 24, path, 'size'),
    cryptMethod: buf.readUInt32BE(32),
    l1Size: buf.readUInt32BE(36),
    l1TableOffset: u64(buf, 40, path, 'l1_table_offset'),
    refcountTableOffset: u64(buf, 48, path, 'refcount_table_offset'),
    refcountTableClusters: buf.readUInt32BE(56),
    nbSnapshots: buf.readUInt32BE(60),
    snapshotsOffset: u64(buf, 64, path, 'snapshots_offset'),
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: QCOW2_REFCOUNT_ORDER,
    headerLength: QCOW2_V2_HEADER_LENGTH,
  };
  if (version === 3) parseV3Fields(path, buf, h);
  checkHeader(path, h, fileSize);
  return h;
}

function parseV3Fields(path: string, buf: Buffer, h: Qcow2Header): void {
  if (buf.length < QCOW2_V3_MIN_HEADER_LENGTH) throw bad(path, 'version 3 header truncated');
  h.incompatibleFeatures = buf.readBigUInt64BE(72);
  h.compatibleFeatures = buf.readBigUInt64BE(80);
  h.autoclearFeatures = buf.readBigUInt64BE(88);
  h.refcountOrder = buf.readUInt32BE(96);
  h.headerLength = buf.readUInt32BE(100);
  if (h.headerLength < QCOW2_V3_MIN_HEADER_LENGTH || h.headerLength % 8 !== 0 || h.headerLength > h.clusterSize) {
    throw bad(path, `header_length ${h.headerLength} (must be >= 104, a multiple of 8, within the first cluster)`);
  }
}

function checkHeader(path: string, h: Qcow2Header, fileSize: number): void {
  const cs = h.clusterSize;
  if (h.cryptMethod !== 0) throw unsupported(path, `encryption (crypt_method ${h.cryptMethod})`);
  checkFeatures(path, h.incompatibleFeatures);
  if (h.refcountOrder !== QCOW2_REFCOUNT_ORDER) {
    throw unsupported(path, `refcount_order ${h.refcountOrder} (only ${QCOW2_REFCOUNT_ORDER}, 16-bit refcounts)`);
  }
  // L1: aligned, inside the file, large enough to map the whole virtual size.
  const l2Entries = cs / 8;
  const needL1 = Math.ceil(h.size / (cs * l2Entries));
  if (h.l1Size * 8 > QCOW2_MAX_L1_BYTES) throw bad(path, `l1_size ${h.l1Size} above QEMU's 32 MiB limit`);
  if (h.l1Size < needL1) throw bad(path, `l1_size ${h.l1Size} too small for virtual size ${h.size} (needs ${needL1})`);
  if (h.l1TableOffset % cs !== 0) throw bad(path, `l1_table_offset ${h.l1TableOffset} not cluster-aligned`);
  if (h.l1Size > 0 && (h.l1TableOffset === 0 || h.l1TableOffset + h.l1Size * 8 > fileSize)) {
    throw bad(path, `L1 table (${h.l1Size} entries at ${h.l1TableOffset}) lies past the end of the file (${fileSize} bytes)`);
  }
  // Refcount table: aligned, non-empty, inside the file.
  const rtBytes = h.refcountTableClusters * cs;
  if (h.refcountTableClusters === 0 || rtBytes > QCOW2_MAX_REFTABLE_BYTES) {
    throw bad(path, `refcount_table_clusters ${h.refcountTableClusters} (must be 1..${QCOW2_MAX_REFTABLE_BYTES / cs})`);
  }
  if (h.refcountTableOffset === 0 || h.refcountTableOffset % cs !== 0) {
    throw bad(path, `refcount_table_offset ${h.refcountTableOffset} not a non-zero cluster-aligned offset`);
  }
  if (h.refcountTableOffset + rtBytes > fileSize) {
    throw bad(path, `refcount table (${rtBytes} bytes at ${h.refcountTableOffset}) lies past the end of the file (${fileSize} bytes)`);
  }
}

/** "An implementation must fail to open an image if an unknown bit is set." */
function checkFeatures(path: string, incompat: bigint): void {
  const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION_TYPE | INCOMPAT_EXTL2;
  const unknown = incompat & ~known;
  if (unknown !== 0n) throw unsupported(path, `incompatible feature bits 0x${unknown.toString(16)} (unknown)`);
  // Dirty and corrupt are checked against readOnly by the opener; these never work.
  for (const bit of [INCOMPAT_DATA_FILE, INCOMPAT_EXTL2]) {
    if (incompat & bit) throw unsupported(path, `incompatible feature '${INCOMPAT_NAMES[bitIndex(bit)]}'`);
  }
}

function bitIndex(bit: bigint): number {
  return bit.toString(2).length - 1;
}

/** Name of an incompatible feature bit, for messages. */
export function incompatName(bit: bigint): string {
  return INCOMPAT_NAMES[bitIndex(bit)] ?? `bit ${bitIndex(bit)}`;
}

/**
 * Which fixed metadata a host cluster at `off` overlaps, as the header places
 * it: the header cluster, the L1 table or (unless the caller tracks a moved
 * one itself) the refcount table; part of QEMU's metadata overlap checks
 * (qcow2_check_metadata_overlap).
 */
export function fixedMetadataAt(h: Qcow2Header, off: number, withRefcountTable = true): string | undefined {
  const cs = h.clusterSize;
  const overlaps = (start: number, len: number) => len > 0 && off < start + len && off + cs > start;
  if (off < cs) return 'the header';
  if (overlaps(h.l1TableOffset, h.l1Size * 8)) return 'the L1 table';
  if (withRefcountTable && overlaps(h.refcountTableOffset, h.refcountTableClusters * cs)) return 'the refcount table';
  return undefined;
}
