/**
 * L1 and L2 table entries (QEMU docs/interop/qcow2.txt, "Cluster mapping"),
 * read and written as two big-endian 32-bit halves so no BigInt is needed on
 * the I/O path.  Host offsets use bits 9-55; flags:
 *   bit 63  COPIED: refcount is exactly one, may be written in place
 *   bit 62  COMPRESSED (L2 only)
 *   bit 0   ZERO: the cluster reads as zeros (v3 L2 only)
 */
const HI_COPIED = 0x80000000;
const HI_COMPRESSED = 0x40000000;
/** Bits 32-55 of the offset live in the low 24 bits of the high half. */
const HI_OFFSET_MASK = 0x00ffffff;
const LO_OFFSET_MASK = 0xfffffe00;
const LO_ZERO = 1;
const TWO32 = 0x1_0000_0000;

export type L2Kind = 'unallocated' | 'zero' | 'normal' | 'compressed';

export interface L2Entry {
  kind: L2Kind;
  /** Host offset of the cluster (normal; zero with a preallocation), else 0. */
  offset: number;
  copied: boolean;
}

/** Decode entry `i` of an L2 table. */
export function readL2Entry(table: Buffer, i: number): L2Entry {
  const hi = table.readUInt32BE(i * 8);
  const lo = table.readUInt32BE(i * 8 + 4);
  if (hi & HI_COMPRESSED) return { kind: 'compressed', offset: 0, copied: false };
  // `>>> 0`: JS bitwise results are signed 32-bit; bit 31 of the low half is offset bit 31.
  const offset = (hi & HI_OFFSET_MASK) * TWO32 + ((lo & LO_OFFSET_MASK) >>> 0);
  const copied = (hi & HI_COPIED) !== 0;
  if (lo & LO_ZERO) return { kind: 'zero', offset, copied };
  if (offset === 0) return { kind: 'unallocated', offset: 0, copied };
  return { kind: 'normal', offset, copied };
}

/** The raw 64-bit descriptor of a compressed L2 entry, as a bigint (bits 0-61). */
export function readCompressedDescriptor(table: Buffer, i: number): bigint {
  return table.readBigUInt64BE(i * 8) & ((1n << 62n) - 1n);
}

/** Write a standard entry: host cluster at `offset` with refcount 1 (COPIED). */
export function writeL2Normal(table: Buffer, i: number, offset: number): void {
  table.writeUInt32BE((HI_COPIED | Math.floor(offset / TWO32)) >>> 0, i * 8);
  table.writeUInt32BE(offset % TWO32 >>> 0, i * 8 + 4);
}

/** Clear an entry: unallocated, reads zeros (there is no backing file). */
export function clearL2Entry(table: Buffer, i: number): void {
  table.writeUInt32BE(0, i * 8);
  table.writeUInt32BE(0, i * 8 + 4);
}

/** A v3 zero cluster with no host cluster: reads zeros, not the backing file. */
export function writeL2Zero(table: Buffer, i: number): void {
  table.writeUInt32BE(0, i * 8);
  table.writeUInt32BE(LO_ZERO, i * 8 + 4);
}

/** L1 entry `i`: the L2 table's host offset (0 = none) and its COPIED flag. */
export function readL1Entry(table: Buffer, i: number): { offset: number; copied: boolean } {
  const hi = table.readUInt32BE(i * 8);
  const lo = table.readUInt32BE(i * 8 + 4);
  return { offset: (hi & HI_OFFSET_MASK) * TWO32 + ((lo & LO_OFFSET_MASK) >>> 0), copied: (hi & HI_COPIED) !== 0 };
}

export function writeL1Entry(table: Buffer, i: number, offset: number): void {
  writeL2Normal(table, i, offset);
}

/** True if any reserved bit of an L1 entry (1-8, 56-62) is set: a corrupt table. */
export function l1EntryReservedBits(table: Buffer, i: number): boolean {
  return (table.readUInt32BE(i * 8) & 0x7f000000) !== 0 || (table.readUInt32BE(i * 8 + 4) & 0x1ff) !== 0;
}
