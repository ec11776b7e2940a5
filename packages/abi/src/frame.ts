/**
 * The wire format between a domain process and the hypervisor (and between
 * any two xenbox processes that talk over ZeroMQ): msgpack-encoded messages.
 *
 *   call   {id, op, args}            domain -> hypervisor
 *   post   {id: 0, op, args}         a call that wants no reply (a posted write);
 *                                    if it fails the server logs it
 *   reply  {id, ok} | {id, err}      hypervisor -> domain, same id
 *   event  {ev, data}                pushed unsolicited (upcalls, notices)
 *
 * One ZeroMQ frame carries either one message or an array of messages (a
 * batch): calls issued while a send is in flight travel together, as do the
 * replies and events ready at the same moment.  Batching is what makes many
 * calls in flight cheap (DESIGN §3 cost model).
 *
 * A ZeroMQ message is the frame, or the frame and a bulk part holding the
 * messages' large byte strings (frame-bulk.ts): encodeParts()/decodeParts().
 * encodeFrame()/decodeFrame() are the one-part form (byte strings inline as
 * msgpack bin), which every receiver also accepts.
 */
import { Packr } from 'msgpackr';
import { XenError, isXenErrno, type XenErrorValue } from './errno.js';
import { packWithBulk, unpackWithBulk } from './frame-bulk.js';

export interface CallMsg<A = unknown> {
  id: number;
  op: string;
  args: A;
}
export interface OkReplyMsg<R = unknown> {
  id: number;
  ok: R;
}
export interface ErrReplyMsg {
  /** null when the frame was too broken to recover the call's id. */
  id: number | null;
  err: XenErrorValue;
}
export type ReplyMsg<R = unknown> = OkReplyMsg<R> | ErrReplyMsg;
export interface EventMsg<D = unknown> {
  ev: string;
  data: D;
}
export type Msg = CallMsg | ReplyMsg | EventMsg;

/** Largest frame (and bulk part) any xenbox ROUTER accepts (ZMQ_MAXMSGSIZE, per part); bigger ones drop the peer. */
export const FRAME_MAX_BYTES = 16 * 1024 * 1024;
/** Parts of one xenbox message: the frame, then at most a bulk part. */
export const MSG_MAX_PARTS = 2;
/** Most messages one batch may carry. */
export const BATCH_MAX_MSGS = 4096;
/** Byte strings one batched frame carries at most: a sender starts a new frame beyond it, so a batch never nears FRAME_MAX_BYTES. */
export const BATCH_MAX_BULK_BYTES = FRAME_MAX_BYTES / 4;
/** The id of a posted call: no reply is sent for it. */
export const POSTED_CALL_ID = 0;
/** Call ids are unsigned 32-bit and wrap (skipping POSTED_CALL_ID). */
export const CALL_ID_MAX = 0xffff_ffff;

// Plain msgpack, no records or extensions of msgpackr's own: peers may be
// hostile, and frame-bulk.ts refuses those extensions when decoding.  The
// one extension is the bulk reference (frame-bulk.ts).
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

/** One frame, byte strings inline (msgpack bin). */
export function encodeFrame(msgs: Msg | Msg[]): Buffer {
  return packr.pack(msgs);
}

/** The parts of a ZeroMQ message: the frame, and the bulk part when a byte string is BULK_MIN_BYTES or longer. */
export function encodeParts(msgs: Msg | Msg[]): Buffer[] {
  const [frame, bulk] = packWithBulk(() => packr.pack(msgs));
  return bulk === null ? [frame] : [frame, bulk];
}

const malformed = (why: string) => new XenError('EINVAL', `malformed frame: ${why}`);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isCallId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= CALL_ID_MAX;
}

/** Check one decoded value is a message; throws EINVAL naming what is wrong. */
export function checkMsg(v: unknown): Msg {
  if (!isPlainObject(v)) throw malformed('a message must be a map');
  if ('op' in v) {
    if (!isCallId(v.id)) throw malformed('call id must be an unsigned 32-bit integer');
    if (typeof v.op !== 'string' || v.op.length === 0 || v.op.length > 64) throw malformed('op must be a non-empty string of at most 64 characters');
    return { id: v.id, op: v.op, args: v.args ?? {} };
  }
  if ('ev' in v) {
    if (typeof v.ev !== 'string' || v.ev.length === 0) throw malformed('event name must be a non-empty string');
    return { ev: v.ev, data: v.data };
  }
  if ('ok' in v) {
    if (!isCallId(v.id)) throw malformed('reply id must be an unsigned 32-bit integer');
    return { id: v.id, ok: v.ok };
  }
  if ('err' in v) {
    if (v.id !== null && !isCallId(v.id)) throw malformed('reply id must be an unsigned 32-bit integer or nil');
    const err = v.err;
    if (!isPlainObject(err) || !isXenErrno(err.errno) || typeof err.message !== 'string') throw malformed('err must be {errno, message} with a Xen errno name');
    return { id: v.id as number | null, err: { errno: err.errno, message: err.message } };
  }
  throw malformed('a message needs one of op, ev, ok or err');
}

/**
 * Decode a frame into its messages.  Throws {@link XenError} EINVAL with a
 * message naming the problem; never anything else.
 */
export function decodeFrame(buf: Uint8Array): Msg[] {
  return decodeParts([buf]);
}

/**
 * Decode the parts of a ZeroMQ message (the frame, and its bulk part if
 * any) into its messages.  Throws {@link XenError} EINVAL naming the
 * problem (too many parts, an empty or oversize part, a bulk reference
 * without a bulk part or out of order, bulk bytes nobody refers to); never
 * anything else.
 */
export function decodeParts(parts: readonly Uint8Array[]): Msg[] {
  if (parts.length === 0) throw malformed('no parts');
  if (parts.length > MSG_MAX_PARTS) throw malformed(`${parts.length} parts, at most ${MSG_MAX_PARTS} (a frame and its bulk part)`);
  const buf = parts[0]!;
  const bulk = parts[1] ?? null;
  if (buf.byteLength === 0) throw malformed('empty frame');
  if (buf.byteLength > FRAME_MAX_BYTES) throw malformed(`frame of ${buf.byteLength} bytes exceeds ${FRAME_MAX_BYTES}`);
  if (bulk !== null && bulk.byteLength === 0) throw malformed('empty bulk part');
  if (bulk !== null && bulk.byteLength > FRAME_MAX_BYTES) throw malformed(`bulk part of ${bulk.byteLength} bytes exceeds ${FRAME_MAX_BYTES}`);
  let value: unknown;
  try {
    value = unpackWithBulk(bulk, () => packr.unpack(buf));
  } catch (e) {
    if (e instanceof XenError) throw e;
    throw malformed(`not msgpack (${e instanceof Error ? e.message : String(e)})`);
  }
  if (Array.isArray(value)) {
    if (value.length === 0) throw malformed('empty batch');
    if (value.length > BATCH_MAX_MSGS) throw malformed(`batch of ${value.length} messages exceeds ${BATCH_MAX_MSGS}`);
    return value.map(checkMsg);
  }
  return [checkMsg(value)];
}

export const isCall = (m: Msg): m is CallMsg => 'op' in m;
export const isEvent = (m: Msg): m is EventMsg => 'ev' in m;
export const isReply = (m: Msg): m is ReplyMsg => 'ok' in m || 'err' in m;
export const isErrReply = (m: ReplyMsg): m is ErrReplyMsg => 'err' in m;

/** The bytes of the byte strings in a value (a message's args, reply or event payload), a few levels deep. */
function byteStringBytes(v: unknown, depth = 0): number {
  if (v instanceof Uint8Array) return v.byteLength;
  if (depth > 4 || v === null || typeof v !== 'object') return 0;
  let n = 0;
  for (const x of Array.isArray(v) ? v : Object.values(v)) n += byteStringBytes(x, depth + 1);
  return n;
}

/**
 * Split queued messages into frames a peer accepts: at most BATCH_MAX_MSGS
 * messages and about BATCH_MAX_BULK_BYTES of byte strings each (eight 2 MiB
 * replies batched together once made a 16 MiB bulk part that the peer
 * refused, dropping every call in it).  A single message is never split.
 */
export function frameBatches(msgs: readonly Msg[]): Msg[][] {
  // The common case on the hot path (one call, reply or event per turn): nothing to weigh.
  if (msgs.length === 1) return [[msgs[0]!]];
  const out: Msg[][] = [];
  let cur: Msg[] = [];
  let bytes = 0;
  for (const m of msgs) {
    const n = byteStringBytes(m);
    if (cur.length && (cur.length >= BATCH_MAX_MSGS || bytes + n > BATCH_MAX_BULK_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(m);
    bytes += n;
  }
  if (cur.length) out.push(cur);
  return out;
}
