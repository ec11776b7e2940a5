/**
 * Bulk bytes: large byte strings (grant copy data, foreign memory, page
 * snapshots) travel beside the msgpack frame, not inside it.
 *
 * A xenbox ZeroMQ message is one part (the frame) or two (the frame and its
 * bulk part).  Every byte string of at least BULK_MIN_BYTES in the messages
 * is appended to the bulk part, in the order msgpack writes it, and the frame
 * holds a reference in its place: a msgpack ext of type BULK_REF_EXT, 8 bytes
 * (offset, length; u32 big-endian, msgpack's byte order) into the bulk part.
 * The references tile the bulk part exactly: each starts where the last one
 * ended and together they cover it, so a bulk part with bytes nobody refers
 * to, or a reference out of order or out of range, is a malformed frame.
 *
 * Why: msgpack-encoding a 256 KiB reply copied it into the encoder's
 * growing buffer (reallocated and copied again as it grew) and kept that
 * buffer alive for as long as ZeroMQ held the frame; measured in
 * bench/RESULTS.md "## gnttab".  Decoding hands out views into the received
 * part either way, as msgpack bin did.
 *
 * A sender that owns a buffer outright (nothing writes to it after it is
 * sent, e.g. the hypervisor's per-batch inline copy buffer) marks it with
 * {@link handOverBulk}: when a message's bulk byte strings are one run of such
 * a buffer, it goes out as the bulk part without being copied (ZeroMQ sends
 * it from there, holding a reference until it is written).
 *
 * msgpackr's extensions are module-wide; frame.ts is this codebase's only
 * msgpackr user.  Outside encodeParts() every byte string packs as plain
 * msgpack bin, as before.
 */
import { addExtension } from 'msgpackr';
import { XenError } from './errno.js';

/** Byte strings at least this long go to the bulk part (shorter ones stay msgpack bin). */
export const BULK_MIN_BYTES = 512;
/** msgpack ext type of a bulk reference (application types are 0..127; msgpackr uses 0, 0x42, 0x62, 0x65, 0x69, 0x70, 0x72-0x78). */
export const BULK_REF_EXT = 0x58;
/** Size of a bulk reference's payload: offset and length, u32 each. */
export const BULK_REF_BYTES = 8;

const malformed = (why: string) => new XenError('EINVAL', `malformed frame: ${why}`);

// ------------------------------------------------------------------ encode

/** The byte strings of the message being encoded, while encodeParts() runs; null otherwise. */
let out: Uint8Array[] | null = null;
let outBytes = 0;

/** Buffers whose owner gave them to the transport: sent without a copy. */
const handedOver = new WeakSet<ArrayBufferLike>();

/**
 * Give `buf` to the transport: its owner will not write to it again, so a
 * message whose bulk bytes are one run of it may be sent from it directly.
 */
export function handOverBulk<T extends Uint8Array>(buf: T): T {
  handedOver.add(buf.buffer);
  return buf;
}

type AllocateForWrite = (size: number) => { target: Uint8Array; position: number; targetView: DataView };

/** msgpack bin8/16/32, as msgpackr writes a Uint8Array without this extension. */
function writeBin(bytes: Uint8Array, allocateForWrite: AllocateForWrite): void {
  const n = bytes.byteLength;
  const head = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  const { target, position, targetView } = allocateForWrite(head + n);
  let p = position;
  if (head === 2) {
    target[p++] = 0xc4;
    target[p++] = n;
  } else if (head === 3) {
    target[p++] = 0xc5;
    targetView.setUint16(p, n);
    p += 2;
  } else {
    target[p++] = 0xc6;
    targetView.setUint32(p, n);
    p += 4;
  }
  target.set(bytes, p);
}

/** msgpack fixext 8: the encoding of a bulk reference. */
const FIXEXT8 = 0xd7;

/** An extension's pack: write the bytes (bin) or a bulk reference (fixext 8) in place; nothing to return. */
function packBytes(bytes: Uint8Array, allocateForWrite: AllocateForWrite): undefined {
  if (out === null || bytes.byteLength < BULK_MIN_BYTES) {
    writeBin(bytes, allocateForWrite);
    return undefined;
  }
  const { target, position, targetView } = allocateForWrite(2 + BULK_REF_BYTES);
  target[position] = FIXEXT8;
  target[position + 1] = BULK_REF_EXT;
  targetView.setUint32(position + 2, outBytes);
  targetView.setUint32(position + 6, bytes.byteLength);
  out.push(bytes);
  outBytes += bytes.byteLength;
  return undefined;
}

/** Run `pack` collecting the bulk byte strings; returns its result and the bulk part (null when none). */
export function packWithBulk(pack: () => Buffer): [Buffer, Buffer | null] {
  out = [];
  outBytes = 0;
  let frame: Buffer;
  let parts: Uint8Array[];
  try {
    frame = pack();
  } finally {
    parts = out;
    out = null;
  }
  return [frame, parts.length ? joinBulk(parts, outBytes) : null];
}

/** The bulk part: the byte strings back to back, without a copy when they are one run of a handed-over buffer. */
function joinBulk(parts: Uint8Array[], total: number): Buffer {
  const first = parts[0]!;
  if (handedOver.has(first.buffer)) {
    let end = first.byteOffset + first.byteLength;
    let run = true;
    for (let i = 1; i < parts.length && run; i++) {
      const p = parts[i]!;
      run = p.buffer === first.buffer && p.byteOffset === end;
      end += p.byteLength;
    }
    if (run) return Buffer.from(first.buffer, first.byteOffset, total);
  }
  const bulk = Buffer.allocUnsafeSlow(total);
  let pos = 0;
  for (const p of parts) {
    bulk.set(p, pos);
    pos += p.byteLength;
  }
  return bulk;
}

// ------------------------------------------------------------------ decode

/** The bulk part of the message being decoded, and how much of it the references so far covered. */
let inPart: Uint8Array | null = null;
let inPos = 0;

function unpackRef(ref: Uint8Array): Uint8Array {
  if (inPart === null) throw malformed('a bulk reference in a message without a bulk part');
  if (ref.byteLength !== BULK_REF_BYTES) throw malformed(`a bulk reference of ${ref.byteLength} bytes, not ${BULK_REF_BYTES}`);
  const offset = ((ref[0]! << 24) | (ref[1]! << 16) | (ref[2]! << 8) | ref[3]!) >>> 0;
  const len = ((ref[4]! << 24) | (ref[5]! << 16) | (ref[6]! << 8) | ref[7]!) >>> 0;
  if (offset !== inPos) throw malformed(`bulk reference at offset ${offset}, expected ${inPos} (references tile the bulk part in order)`);
  if (len > inPart.byteLength - offset) throw malformed(`bulk reference [${offset}, +${len}) past the end of a ${inPart.byteLength}-byte bulk part`);
  inPos += len;
  return inPart.subarray(offset, offset + len);
}

/**
 * Run `unpack` with `bulk` as the message's bulk part (or none), then check
 * the references covered all of it.  Throws EINVAL naming the problem.
 */
export function unpackWithBulk<T>(bulk: Uint8Array | null, unpack: () => T): T {
  inPart = bulk;
  inPos = 0;
  try {
    const v = unpack();
    if (bulk !== null && inPos !== bulk.byteLength) throw malformed(`bulk part has ${bulk.byteLength - inPos} bytes no message refers to`);
    return v;
  } finally {
    inPart = null;
  }
}

// ------------------------------------------------------------------ registration

addExtension({
  Class: Uint8Array,
  type: BULK_REF_EXT,
  pack: packBytes as unknown as (v: unknown) => Buffer,
  unpack: unpackRef,
});

/**
 * msgpackr also decodes its own extensions (Set, Error, RegExp, BigInt,
 * typed arrays, bundled strings, structured-clone ids) from any input; no
 * xenbox sender writes them (frame.ts packs with moreTypes and records off),
 * so a frame carrying one is refused.  ext 0 (undefined) and -1 (timestamp)
 * stay: msgpackr writes those for an undefined field and a Date.
 */
for (const type of [0x42, 0x62, 0x65, 0x69, 0x70, 0x73, 0x74, 0x78]) {
  addExtension({
    type,
    unpack() {
      throw malformed(`msgpack ext type 0x${type.toString(16)} is not part of the xenbox wire format`);
    },
  });
}
