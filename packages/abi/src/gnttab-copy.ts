/**
 * GNTTABOP_copy on the wire: Xen's own `struct gnttab_copy` array
 * (xen/include/public/grant_table.h), as a 64-bit guest lays it out, plus
 * xenbox's message buffers.
 *
 *     struct gnttab_copy {
 *         struct gnttab_copy_ptr {
 *             union { grant_ref_t ref; xen_pfn_t gmfn; } u;   // @0  (8 bytes)
 *             domid_t  domid;                                // @8
 *             uint16_t offset;                               // @10 (4 bytes padding)
 *         } source, dest;                                    // @0, @16
 *         uint16_t len;                                      // @32
 *         uint16_t flags;   // GNTCOPY_*                     // @34
 *         int16_t  status;  // GNTST_*                       // @36 (2 bytes padding)
 *     };                                                     // 40 bytes
 *
 * The call is `{ops, data?}`: `ops` the array (n × 40 bytes, little-endian),
 * `data` the bytes of message-buffer sources.  The reply is `{status, data}`:
 * `status` one int16 (LE) per op, what Xen writes back into each op's
 * status field; `data` the bytes of message-buffer dests (null when none).
 *
 * Why bytes and not one msgpack map per op: a 64-op batch was ~400 objects
 * to encode, decode and collect on each side, the largest cost of a grant
 * copy after the bytes themselves (bench/RESULTS.md "## gnttab").
 *
 * xenbox extension — message buffers.  In Xen the non-grant side of a copy
 * is a frame of the caller's own memory.  A process domain's own frames live
 * in the hypervisor (DESIGN §4), so copying into one and then fetching it
 * through its mirror moves every byte twice.  With GNTCOPY_xenbox_source_buf
 * (GNTCOPY_xenbox_dest_buf) the source (dest) is instead `len` bytes at byte
 * position `u` of the call's (the reply's) `data`; they stand for bytes
 * [offset, offset + len) of a frame of the caller's, so every check of Xen's
 * copy still applies with the same GNTST_* status: the side's domid must be
 * DOMID_SELF (permission_denied), offset + len within a page
 * (bad_copy_arg), not also a grant (general_error).  A source range outside
 * `data`, or a dest range past GNTTAB_COPY_BUF_MAX, is bad_copy_arg.  Bytes of
 * the reply's `data` that no successful op wrote are zero.
 *
 * This module is the one place the layout is spelled out: the hypervisor
 * decodes with it, libxen and tests encode with it.
 */
import { GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTST, GNTTAB_MAX_BATCH, type GntStatus, type GnttabCopy, type GnttabCopyResult } from './grant-table.js';
import { XEN_PAGE_SIZE } from './memory.js';
import { XenError } from './errno.js';

/** Offsets in struct gnttab_copy (64-bit layout). */
export const GNTTAB_COPY_STRUCT = {
  source_u: 0,
  source_domid: 8,
  source_offset: 10,
  dest_u: 16,
  dest_domid: 24,
  dest_offset: 26,
  len: 32,
  flags: 34,
  status: 36,
  size: 40,
} as const;

/** xenbox: the source is `len` bytes at position `u` of the call's `data`. */
export const GNTCOPY_xenbox_source_buf = 1 << 8;
/** xenbox: the dest is `len` bytes at position `u` of the reply's `data`. */
export const GNTCOPY_xenbox_dest_buf = 1 << 9;
/** Largest `data` either way: a full batch of whole pages. */
export const GNTTAB_COPY_BUF_MAX = GNTTAB_MAX_BATCH * XEN_PAGE_SIZE;

export interface GnttabCopyArgs {
  /** n × struct gnttab_copy. */
  ops: Uint8Array;
  /** The bytes of GNTCOPY_xenbox_source_buf sides. */
  data?: Uint8Array;
}

export interface GnttabCopyReply {
  /** One int16 (LE) GNTST_* per op. */
  status: Uint8Array;
  /** The bytes of GNTCOPY_xenbox_dest_buf sides; null when no op has one. */
  data: Uint8Array | null;
}

/** One side of a decoded op: `u` is the ref, the gmfn or the buffer position, by the flags. */
export interface GnttabCopyPtrFields {
  u: number;
  domid: number;
  offset: number;
}

export interface GnttabCopyFields {
  source: GnttabCopyPtrFields;
  dest: GnttabCopyPtrFields;
  len: number;
  flags: number;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** The number of ops in `ops`, or EINVAL/E2BIG naming what is wrong with it. */
export function gnttabCopyCount(op: string, ops: Uint8Array): number {
  if (ops.byteLength % GNTTAB_COPY_STRUCT.size !== 0) {
    throw new XenError('EINVAL', `${op}: ops is ${ops.byteLength} bytes, not a whole number of ${GNTTAB_COPY_STRUCT.size}-byte struct gnttab_copy`);
  }
  const n = ops.byteLength / GNTTAB_COPY_STRUCT.size;
  if (n > GNTTAB_MAX_BATCH) throw new XenError('E2BIG', `${op}: ops has ${n} entries, more than ${GNTTAB_MAX_BATCH}`);
  return n;
}

/**
 * A union field as a number: a grant ref is 32 bits; a gmfn or a buffer
 * position above 2^53 cannot be a real one, so it reads as
 * Number.MAX_SAFE_INTEGER (never populated, always out of range).
 */
function readU(dv: DataView, at: number): number {
  const hi = dv.getUint32(at + 4, true);
  return hi >= 0x20_0000 ? Number.MAX_SAFE_INTEGER : hi * 0x1_0000_0000 + dv.getUint32(at, true);
}

function writeU(dv: DataView, at: number, u: number): void {
  dv.setUint32(at, u >>> 0, true);
  dv.setUint32(at + 4, Math.floor(u / 0x1_0000_0000), true);
}

/** Every op of a gnttab_copy array (check the length with gnttabCopyCount first). */
export function readGnttabCopies(ops: Uint8Array): GnttabCopyFields[] {
  const dv = view(ops);
  const S = GNTTAB_COPY_STRUCT;
  const n = (ops.byteLength / S.size) | 0;
  const out = new Array<GnttabCopyFields>(n);
  for (let i = 0, b = 0; i < n; i++, b += S.size) {
    const flags = dv.getUint16(b + S.flags, true);
    // A grant side is u.ref, the union's first 32 bits; the rest is not Xen's to read.
    const su = flags & GNTCOPY_source_gref ? dv.getUint32(b + S.source_u, true) : readU(dv, b + S.source_u);
    const du = flags & GNTCOPY_dest_gref ? dv.getUint32(b + S.dest_u, true) : readU(dv, b + S.dest_u);
    out[i] = {
      source: { u: su, domid: dv.getUint16(b + S.source_domid, true), offset: dv.getUint16(b + S.source_offset, true) },
      dest: { u: du, domid: dv.getUint16(b + S.dest_domid, true), offset: dv.getUint16(b + S.dest_offset, true) },
      len: dv.getUint16(b + S.len, true),
      flags,
    };
  }
  return out;
}

/** Writes ops into a gnttab_copy array; status is written 0 (the hypervisor answers in the reply's status array). */
export class GnttabCopyWriter {
  readonly ops: Uint8Array;
  private readonly dv: DataView;

  /** `n` ops, in `into` (n × 40 bytes; set() writes every byte of an op) or a new array. */
  constructor(n: number, into?: Uint8Array) {
    const bytes = n * GNTTAB_COPY_STRUCT.size;
    if (into && into.byteLength !== bytes) throw new XenError('EINVAL', `GnttabCopyWriter: ${into.byteLength} bytes for ${n} ops of ${GNTTAB_COPY_STRUCT.size}`);
    this.ops = into ?? new Uint8Array(bytes);
    this.dv = view(this.ops);
  }

  /** Op `i`: source side, dest side (u, domid, offset each), len and flags. */
  set(i: number, su: number, sdomid: number, soffset: number, du: number, ddomid: number, doffset: number, len: number, flags: number): void {
    const S = GNTTAB_COPY_STRUCT;
    const dv = this.dv;
    const b = i * S.size;
    writeU(dv, b + S.source_u, su);
    dv.setUint16(b + S.source_domid, sdomid, true);
    dv.setUint16(b + S.source_offset, soffset, true);
    writeU(dv, b + S.dest_u, du);
    dv.setUint16(b + S.dest_domid, ddomid, true);
    dv.setUint16(b + S.dest_offset, doffset, true);
    dv.setUint16(b + S.len, len, true);
    dv.setUint16(b + S.flags, flags, true);
    // The padding after each offset, and status with the padding after it.
    dv.setUint32(b + S.source_offset + 2, 0, true);
    dv.setUint32(b + S.dest_offset + 2, 0, true);
    dv.setUint32(b + S.status, 0, true);
  }
}

/** The statuses of a reply (one int16 LE GNTST_* per op). */
export class GnttabCopyStatuses {
  private readonly dv: DataView;

  constructor(
    status: Uint8Array,
    readonly count: number,
  ) {
    if (status.byteLength < 2 * count) throw new XenError('EIO', `gnttab.copy: the reply has ${status.byteLength >> 1} statuses for ${count} ops`);
    this.dv = view(status);
  }

  get(i: number): GntStatus {
    return this.dv.getInt16(2 * i, true) as GntStatus;
  }
}

/**
 * The wire form of ops given as objects (@xenbox/abi GnttabCopy: `bytes`
 * sources and `inline` dests become message buffers, laid out in op order).
 * Returns the call's args and, per op, where its inline dest's bytes will be.
 * A `bytes` source that is not `len` long is the caller's bug: EINVAL.
 */
export function encodeGnttabCopy(list: readonly GnttabCopy[]): { args: GnttabCopyArgs; destAt: Int32Array } {
  const w = new GnttabCopyWriter(list.length);
  const destAt = new Int32Array(list.length).fill(-1);
  let srcBytes = 0;
  for (const c of list) if (c.source.bytes) srcBytes += c.source.bytes.byteLength;
  const data = srcBytes ? new Uint8Array(srcBytes) : undefined;
  let srcPos = 0;
  let dstPos = 0;
  list.forEach((c, i) => {
    let flags = c.flags & 0xffff;
    let su = c.source.ref ?? c.source.gmfn ?? 0;
    let du = c.dest.ref ?? c.dest.gmfn ?? 0;
    if (c.source.bytes) {
      if (c.source.bytes.byteLength !== c.len) throw new XenError('EINVAL', `gnttab.copy: ops[${i}]: source bytes are ${c.source.bytes.byteLength} long, not len (${c.len})`);
      flags |= GNTCOPY_xenbox_source_buf;
      data!.set(c.source.bytes, srcPos);
      su = srcPos;
      srcPos += c.len;
    }
    if (c.dest.inline) {
      flags |= GNTCOPY_xenbox_dest_buf;
      du = dstPos;
      destAt[i] = dstPos;
      dstPos += c.len;
    }
    w.set(i, su, c.source.domid, c.source.offset, du, c.dest.domid, c.dest.offset, c.len, flags);
  });
  return { args: data ? { ops: w.ops, data } : { ops: w.ops }, destAt };
}

/** A reply as one result per op, `data` (a view of the reply's buffer) for okay inline dests. */
export function decodeGnttabCopyReply(reply: GnttabCopyReply, list: readonly GnttabCopy[], destAt: Int32Array): GnttabCopyResult[] {
  const statuses = new GnttabCopyStatuses(reply.status, list.length);
  return list.map((c, i) => {
    const status = statuses.get(i);
    if (status !== GNTST.okay || destAt[i]! < 0) return { status };
    const at = destAt[i]!;
    if (!reply.data || reply.data.byteLength < at + c.len) throw new XenError('EIO', `gnttab.copy: the reply's data ends before op ${i}'s bytes`);
    return { status, data: reply.data.subarray(at, at + c.len) };
  });
}
