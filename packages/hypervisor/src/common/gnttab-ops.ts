/**
 * GNTTABOP_* (xen/common/grant_table.c): setup_table, query_size,
 * map_grant_ref, unmap_grant_ref, copy.  Batched ops answer with a GNTST_*
 * status per entry and carry on with the next, as Xen's loops do; only a
 * malformed argument (what Xen would meet as -EFAULT) fails the whole call.
 */
import {
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST,
  GNTTAB_MAX_BATCH,
  GTF_permit_access,
  GTF_readonly,
  GTF_reading,
  GTF_sub_page,
  GTF_type_mask,
  GTF_writing,
  XEN_PAGE_SIZE,
  XenError,
  argBytes,
  argDomIdOrSelf,
  argInt,
  argOptBool,
  argObject,
  argRecords,
  handOverBulk,
  type Fields,
  type GntStatus,
  type GnttabCopyResult,
  type GnttabMapResult,
  type GnttabQuerySizeReply,
  type GnttabSetupTableReply,
  type GnttabUnmapResult,
} from '@xenbox/abi';
import type { Hypervisor } from '../hypervisor.js';
import type { Domain } from './domain.js';
import type { HypercallTable } from './hypercall-table.js';
import type { Page } from './page.js';
import { snapshot } from './mirror.js';
import { mayTarget, resolveDomId } from './xsm.js';

const U16 = 0xffff;
const U32 = 0xffff_ffff;

/** PIN_FAIL: a per-op failure with Xen's status, never an exception out of the batch. */
class PinFail extends Error {
  constructor(readonly status: GntStatus, why: string) {
    super(why);
  }
}

function liveDomain(hv: Hypervisor, domid: number): Domain | undefined {
  const d = hv.domains.get(domid);
  return d && !d.dying ? d : undefined;
}

// ---------------------------------------------------------------- setup/query

export function setupTable(hv: Hypervisor, caller: Domain, raw: unknown): GnttabSetupTableReply {
  const op = 'gnttab.setup_table';
  const a = argObject(op, raw);
  const dom = argDomIdOrSelf(op, a, 'dom');
  const nr = argInt(op, a, 'nr_frames', 0, U32);
  const d = liveDomain(hv, resolveDomId(caller, dom));
  if (!d) return { status: GNTST.bad_domain, frame_list: [] };
  if (!mayTarget(caller, d)) return { status: GNTST.permission_denied, frame_list: [] };
  if (nr > d.grants.maxFrames) return { status: GNTST.general_error, frame_list: [] };
  try {
    d.grants.grow(nr);
  } catch {
    return { status: GNTST.general_error, frame_list: [] };
  }
  return { status: GNTST.okay, frame_list: Array.from({ length: nr }, (_, i) => d.grants.frameGfn(i)) };
}

export function querySize(hv: Hypervisor, caller: Domain, raw: unknown): GnttabQuerySizeReply {
  const op = 'gnttab.query_size';
  const dom = argDomIdOrSelf(op, argObject(op, raw), 'dom');
  const d = liveDomain(hv, resolveDomId(caller, dom));
  if (!d) return { nr_frames: 0, max_nr_frames: 0, status: GNTST.bad_domain };
  if (!mayTarget(caller, d)) return { nr_frames: 0, max_nr_frames: 0, status: GNTST.permission_denied };
  return { nr_frames: d.grants.nrFrames, max_nr_frames: d.grants.maxFrames, status: GNTST.okay };
}

// ---------------------------------------------------------------- pinning

/**
 * _set_status_v1(): check the shared entry lets `ld` use it (type
 * permit_access, not sub-page for a map, domid match, not readonly for a
 * write) and set GTF_reading / GTF_writing.
 */
function setStatus(rd: Domain, ref: number, ld: Domain, readonly: boolean, mapflag: boolean, pinned: boolean): void {
  const e = rd.grants.entry(ref);
  const mask = GTF_type_mask | (mapflag ? GTF_sub_page : 0);
  if (!pinned && ((e.flags & mask) !== GTF_permit_access || e.domid !== ld.domid)) {
    throw new PinFail(GNTST.general_error, `bad flags (0x${e.flags.toString(16)}) or dom (${e.domid}); expected d${ld.domid}`);
  }
  if (!readonly && e.flags & GTF_readonly) throw new PinFail(GNTST.general_error, 'attempt to write-pin a r/o grant entry');
  rd.grants.setFlags(ref, GTF_reading | (readonly ? 0 : GTF_writing));
}

/** get_paged_frame(): the granted gfn's page in the granter's p2m. */
function grantedPage(rd: Domain, gfn: number): Page {
  const page = rd.memory.page(gfn);
  if (!page) throw new PinFail(GNTST.bad_page, `d${rd.domid} gfn 0x${gfn.toString(16)} is not populated`);
  return page;
}

/** Drop pins and clear GTF_writing/GTF_reading once nobody writes/reads (unmap_common_complete). */
function unpin(rd: Domain, ref: number, readonly: boolean): void {
  const act = rd.grants.active.get(ref);
  if (!act) return;
  if (readonly) act.readPins--;
  else act.writePins--;
  act.page.pins--;
  if (act.writePins === 0) rd.grants.clearFlags(ref, GTF_writing);
  if (act.readPins + act.writePins === 0) {
    rd.grants.clearFlags(ref, GTF_reading);
    rd.grants.active.delete(ref);
  }
}

// ---------------------------------------------------------------- map/unmap

function parseMap(op: string, f: Fields): { flags: number; ref: number; dom: number } {
  return { flags: argInt(op, f, 'flags', 0, U32), ref: argInt(op, f, 'ref', 0, U32), dom: argInt(op, f, 'dom', 0, U16) };
}

/** map_grant_ref() for one op. */
export function mapGrantRef(hv: Hypervisor, ld: Domain, peerKey: string, m: { flags: number; ref: number; dom: number }): GnttabMapResult {
  if ((m.flags & (GNTMAP_device_map | GNTMAP_host_map)) === 0) return { status: GNTST.bad_gntref, handle: 0 };
  const rd = liveDomain(hv, m.dom);
  if (!rd) return { status: GNTST.bad_domain, handle: 0 };
  const handle = ld.grants.allocHandle();
  if (handle === null) return { status: GNTST.no_device_space, handle: 0 };
  const readonly = (m.flags & GNTMAP_readonly) !== 0;
  try {
    if (m.ref >= rd.grants.nrEntries) throw new PinFail(GNTST.bad_gntref, `bad ref 0x${m.ref.toString(16)} for d${rd.domid}`);
    let act = rd.grants.active.get(m.ref);
    if (act && act.mapper !== ld.domid) throw new PinFail(GNTST.general_error, `ref ${m.ref} is pinned by d${act.mapper}`);
    if (!act || (!readonly && act.writePins === 0)) {
      setStatus(rd, m.ref, ld, readonly, true, act !== undefined);
      if (!act) {
        try {
          act = { mapper: ld.domid, page: grantedPage(rd, rd.grants.entry(m.ref).frame), readPins: 0, writePins: 0 };
        } catch (e) {
          rd.grants.clearFlags(m.ref, GTF_reading | GTF_writing); // unlock_out_clear
          throw e;
        }
        rd.grants.active.set(m.ref, act);
      }
    }
    if (readonly) act.readPins++;
    else act.writePins++;
    act.page.pins++;
    const mirror = ld.isProcess && m.flags & GNTMAP_host_map ? ld.mirrors.add(act.page, peerKey, !readonly, 'grant', handle) : null;
    ld.grants.setMapping(handle, { granter: rd.domid, ref: m.ref, flags: m.flags, mirror });
    return mirror ? { status: GNTST.okay, handle, mid: mirror.mid, data: snapshot(mirror) } : { status: GNTST.okay, handle };
  } catch (e) {
    ld.grants.putHandle(handle);
    if (e instanceof PinFail) return { status: e.status, handle: 0 };
    throw e;
  }
}

/** unmap_common() for one handle. */
export function unmapGrantRef(hv: Hypervisor, ld: Domain, handle: number): GnttabUnmapResult {
  if (handle >= ld.grants.maptrackLimit) return { status: GNTST.bad_handle };
  const map = ld.grants.mapping(handle);
  if (!map) return { status: GNTST.bad_handle };
  const rd = hv.domains.get(map.granter);
  if (rd) unpin(rd, map.ref, (map.flags & GNTMAP_readonly) !== 0);
  if (map.mirror) ld.mirrors.remove(map.mirror);
  ld.grants.putHandle(handle);
  return { status: GNTST.okay };
}

// ---------------------------------------------------------------- copy

/**
 * One side of a copy.  `bytes` (source) and `inline` (dest) are the xenbox
 * extension of @xenbox/abi GnttabCopyPtr: the caller's buffer in the message
 * instead of an own frame.
 */
export interface CopyPtr {
  ref: number;
  gmfn: number;
  domid: number;
  offset: number;
  bytes: Uint8Array | null;
  inline: boolean;
}

export interface CopyOp {
  source: CopyPtr;
  dest: CopyPtr;
  len: number;
  flags: number;
}

const SRC = 'gnttab.copy source';
const DST = 'gnttab.copy dest';

function parsePtr(op: string, raw: unknown, isSource: boolean): CopyPtr {
  const f = argObject(op, raw);
  const bytes = f.bytes === undefined ? null : argBytes(op, f, 'bytes', XEN_PAGE_SIZE);
  const inline = f.inline === undefined ? false : argOptBool(op, f, 'inline') === true;
  if (bytes !== null && !isSource) throw new XenError('EINVAL', `${op}: bytes is for the source only`);
  if (f.inline !== undefined && isSource) throw new XenError('EINVAL', `${op}: inline is for the dest only`);
  return {
    ref: f.ref === undefined ? 0 : argInt(op, f, 'ref', 0, U32),
    gmfn: f.gmfn === undefined ? 0 : argInt(op, f, 'gmfn', 0, U32),
    domid: argInt(op, f, 'domid', 0, U16),
    offset: argInt(op, f, 'offset', 0, U16),
    bytes,
    inline,
  };
}

/** The ops of a gnttab.copy call, checked; a malformed one fails the whole call naming its index. */
export function parseCopyOps(raw: unknown): CopyOp[] {
  const op = 'gnttab.copy';
  const list = argObject(op, raw).ops;
  if (!Array.isArray(list)) throw new XenError('EINVAL', `${op}: ops must be an array`);
  if (list.length > GNTTAB_MAX_BATCH) throw new XenError('E2BIG', `${op}: ops has ${list.length} entries, more than ${GNTTAB_MAX_BATCH}`);
  const out: CopyOp[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    try {
      const f = argObject(op, list[i]);
      out[i] = { source: parsePtr(SRC, f.source, true), dest: parsePtr(DST, f.dest, false), len: argInt(op, f, 'len', 0, U16), flags: argInt(op, f, 'flags', 0, U16) };
    } catch (e) {
      if (e instanceof XenError) throw new XenError(e.errno, `ops[${i}]: ${e.message}`);
      throw e;
    }
  }
  return out;
}

/** A claimed side of a copy: the page (null for a caller's buffer), and the grant to release after. */
interface CopyBuf {
  page: Page | null;
  rd: Domain | null;
  ref: number;
}

/**
 * gnttab_copy_claim_buf(): a grant ref of `ptr.domid` (acquire_grant_for_copy),
 * one of the caller's own frames, or (xenbox) the caller's buffer.
 */
function claimBuf(hv: Hypervisor, ld: Domain, ptr: CopyPtr, isGref: boolean, readonly: boolean): CopyBuf {
  if (!isGref) {
    if (ptr.bytes !== null || ptr.inline) return { page: null, rd: null, ref: 0 };
    const page = ld.memory.page(ptr.gmfn);
    if (!page) throw new PinFail(GNTST.bad_page, `own gfn 0x${ptr.gmfn.toString(16)} is not populated`);
    return { page, rd: null, ref: 0 };
  }
  if (ptr.bytes !== null || ptr.inline) throw new PinFail(GNTST.general_error, 'a grant side cannot also be the caller\'s buffer');
  const rd = ptr.domid === DOMID_SELF ? ld : liveDomain(hv, ptr.domid);
  if (!rd) throw new PinFail(GNTST.bad_domain, `no domain ${ptr.domid}`);
  if (ptr.ref >= rd.grants.nrEntries) throw new PinFail(GNTST.bad_gntref, `bad ref 0x${ptr.ref.toString(16)} for d${rd.domid}`);
  const act = rd.grants.active.get(ptr.ref);
  if (act && act.mapper !== ld.domid) throw new PinFail(GNTST.general_error, `ref ${ptr.ref} is pinned by d${act.mapper}`);
  setStatus(rd, ptr.ref, ld, readonly, false, act !== undefined);
  if (act) return { page: act.page, rd, ref: ptr.ref };
  try {
    return { page: grantedPage(rd, rd.grants.entry(ptr.ref).frame), rd, ref: ptr.ref };
  } catch (e) {
    rd.grants.clearFlags(ptr.ref, GTF_reading | GTF_writing);
    throw e;
  }
}

/** A copy's pin lasts only for the copy: put back the flags the maps need. */
function releaseBuf(b: CopyBuf): void {
  if (b.rd === null) return;
  const still = b.rd.grants.active.get(b.ref);
  if (!still) b.rd.grants.clearFlags(b.ref, GTF_reading | GTF_writing);
  else if (still.writePins === 0) b.rd.grants.clearFlags(b.ref, GTF_writing);
}

/** Where the bytes of inline dests go: one buffer for a batch (not an allocation per op). */
export interface InlineOut {
  buf: Uint8Array;
  pos: number;
}

/** gnttab_copy_one(). */
export function copyOne(hv: Hypervisor, ld: Domain, op: CopyOp, inlineOut?: InlineOut): GnttabCopyResult {
  const srcGref = (op.flags & GNTCOPY_source_gref) !== 0;
  const dstGref = (op.flags & GNTCOPY_dest_gref) !== 0;
  let src: CopyBuf | null = null;
  let dst: CopyBuf | null = null;
  try {
    // gnttab_copy_lock_domains(): a frame (not a grant) may only be one's own.
    if (!srcGref && op.source.domid !== DOMID_SELF) throw new PinFail(GNTST.permission_denied, 'only allow copy-by-mfn for DOMID_SELF');
    if (!dstGref && op.dest.domid !== DOMID_SELF) throw new PinFail(GNTST.permission_denied, 'only allow copy-by-mfn for DOMID_SELF');
    if (srcGref && op.source.domid !== DOMID_SELF && !liveDomain(hv, op.source.domid)) throw new PinFail(GNTST.bad_domain, `no domain ${op.source.domid}`);
    if (dstGref && op.dest.domid !== DOMID_SELF && !liveDomain(hv, op.dest.domid)) throw new PinFail(GNTST.bad_domain, `no domain ${op.dest.domid}`);
    src = claimBuf(hv, ld, op.source, srcGref, true);
    dst = claimBuf(hv, ld, op.dest, dstGref, false);
    // gnttab_copy_buf(): never across a page boundary.
    if (op.source.offset + op.len > XEN_PAGE_SIZE || op.dest.offset + op.len > XEN_PAGE_SIZE) {
      throw new PinFail(GNTST.bad_copy_arg, 'copy beyond page area');
    }
    const from = src.page !== null ? src.page.bytes.subarray(op.source.offset, op.source.offset + op.len) : op.source.bytes;
    if (from === null || from.length !== op.len) throw new PinFail(GNTST.bad_copy_arg, `source bytes are not len (${op.len}) long`);
    if (dst.page === null) {
      // A copy, not a view of the page: the reply is encoded after the rest of the frame's calls.
      if (!inlineOut || inlineOut.pos + op.len > inlineOut.buf.length) return { status: GNTST.okay, data: from.slice() };
      const data = inlineOut.buf.subarray(inlineOut.pos, inlineOut.pos + op.len);
      data.set(from);
      inlineOut.pos += op.len;
      return { status: GNTST.okay, data };
    }
    // set() copies through a temporary when source and destination overlap.
    dst.page.write(op.dest.offset, from);
    return { status: GNTST.okay };
  } catch (e) {
    if (e instanceof PinFail) return { status: e.status };
    throw e;
  } finally {
    if (src) releaseBuf(src);
    if (dst) releaseBuf(dst);
  }
}

// ---------------------------------------------------------------- table

export function gnttabOps(hv: Hypervisor): HypercallTable {
  return {
    'gnttab.setup_table': { priv: 'hook', handle: (caller, raw) => setupTable(hv, caller, raw) },
    'gnttab.query_size': { priv: 'hook', handle: (caller, raw) => querySize(hv, caller, raw) },
    'gnttab.map_grant_ref': {
      priv: 'hook',
      handle(caller, raw, ctx) {
        const op = 'gnttab.map_grant_ref';
        const ops = argRecords(op, argObject(op, raw), 'ops', GNTTAB_MAX_BATCH).map((f) => parseMap(op, f));
        return ops.map((m) => mapGrantRef(hv, caller, ctx.peerKey, m));
      },
    },
    'gnttab.unmap_grant_ref': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'gnttab.unmap_grant_ref';
        const ops = argRecords(op, argObject(op, raw), 'ops', GNTTAB_MAX_BATCH).map((f) => argInt(op, f, 'handle', 0, U32));
        return ops.map((h) => unmapGrantRef(hv, caller, h));
      },
    },
    'gnttab.copy': {
      priv: 'hook',
      handle(caller, raw) {
        const ops = parseCopyOps(raw);
        let inlineBytes = 0;
        for (const c of ops) if (c.dest.inline && (c.flags & GNTCOPY_dest_gref) === 0) inlineBytes += c.len;
        // Its own buffer (not the small-allocation pool), written once here and
        // then only read: handed to the transport, it is the reply's bulk part
        // as is (@xenbox/abi frame-bulk.ts).
        const inlineOut = inlineBytes ? { buf: handOverBulk(Buffer.allocUnsafeSlow(inlineBytes)), pos: 0 } : undefined;
        const out: GnttabCopyResult[] = new Array(ops.length);
        for (let i = 0; i < ops.length; i++) out[i] = copyOne(hv, caller, ops[i]!, inlineOut);
        return out;
      },
    },
  };
}

