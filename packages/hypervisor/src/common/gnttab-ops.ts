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
  GNTCOPY_xenbox_dest_buf,
  GNTCOPY_xenbox_source_buf,
  GNTTAB_COPY_BUF_MAX,
  GNTTAB_COPY_STRUCT,
  XEN_PAGE_SIZE,
  argBytes,
  argDomIdOrSelf,
  argInt,
  argObject,
  argRecords,
  gnttabCopyCount,
  handOverBulk,
  readGnttabCopies,
  type Fields,
  type GntStatus,
  type GnttabCopyFields,
  type GnttabCopyPtrFields,
  type GnttabCopyReply,
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

/** The message buffers of one gnttab.copy call (@xenbox/abi gnttab-copy.ts): the call's source bytes, the reply's dest bytes. */
export interface CopyBuffers {
  source: Uint8Array | null;
  dest: Uint8Array | null;
}

/** A claimed side of a copy: the page (null for a message buffer), and the grant to release after. */
interface CopyBuf {
  page: Page | null;
  rd: Domain | null;
  ref: number;
}

const MESSAGE_BUFFER: CopyBuf = { page: null, rd: null, ref: 0 };

/**
 * gnttab_copy_claim_buf(): a grant ref of `ptr.domid` (acquire_grant_for_copy),
 * one of the caller's own frames, or (xenbox) a message buffer.
 */
function claimBuf(hv: Hypervisor, ld: Domain, ptr: GnttabCopyPtrFields, isGref: boolean, isBuf: boolean, readonly: boolean): CopyBuf {
  if (!isGref) {
    if (isBuf) return MESSAGE_BUFFER;
    const page = ld.memory.page(ptr.u);
    if (!page) throw new PinFail(GNTST.bad_page, `own gfn 0x${ptr.u.toString(16)} is not populated`);
    return { page, rd: null, ref: 0 };
  }
  if (isBuf) throw new PinFail(GNTST.general_error, 'a grant side cannot also be a message buffer');
  const rd = ptr.domid === DOMID_SELF ? ld : liveDomain(hv, ptr.domid);
  if (!rd) throw new PinFail(GNTST.bad_domain, `no domain ${ptr.domid}`);
  const ref = ptr.u;
  if (ref >= rd.grants.nrEntries) throw new PinFail(GNTST.bad_gntref, `bad ref 0x${ref.toString(16)} for d${rd.domid}`);
  const act = rd.grants.active.get(ref);
  if (act && act.mapper !== ld.domid) throw new PinFail(GNTST.general_error, `ref ${ref} is pinned by d${act.mapper}`);
  setStatus(rd, ref, ld, readonly, false, act !== undefined);
  if (act) return { page: act.page, rd, ref };
  try {
    return { page: grantedPage(rd, rd.grants.entry(ref).frame), rd, ref };
  } catch (e) {
    rd.grants.clearFlags(ref, GTF_reading | GTF_writing);
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

/** `len` bytes at `at` of a message buffer, or null when they are not all inside it. */
function bufferRange(buf: Uint8Array | null, at: number, len: number): Uint8Array | null {
  return buf !== null && at + len <= buf.byteLength ? buf.subarray(at, at + len) : null;
}

/** gnttab_copy_one(): the op's GNTST_* status. */
export function copyOne(hv: Hypervisor, ld: Domain, op: GnttabCopyFields, bufs: CopyBuffers): GntStatus {
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
    src = claimBuf(hv, ld, op.source, srcGref, (op.flags & GNTCOPY_xenbox_source_buf) !== 0, true);
    dst = claimBuf(hv, ld, op.dest, dstGref, (op.flags & GNTCOPY_xenbox_dest_buf) !== 0, false);
    // gnttab_copy_buf(): never across a page boundary.
    if (op.source.offset + op.len > XEN_PAGE_SIZE || op.dest.offset + op.len > XEN_PAGE_SIZE) {
      throw new PinFail(GNTST.bad_copy_arg, 'copy beyond page area');
    }
    const from = src.page !== null ? src.page.bytes.subarray(op.source.offset, op.source.offset + op.len) : bufferRange(bufs.source, op.source.u, op.len);
    if (from === null) throw new PinFail(GNTST.bad_copy_arg, `source [${op.source.u}, +${op.len}) is outside the call's data`);
    if (dst.page !== null) {
      // set() copies through a temporary when source and destination overlap.
      dst.page.write(op.dest.offset, from);
      return GNTST.okay;
    }
    const to = bufferRange(bufs.dest, op.dest.u, op.len);
    if (to === null) throw new PinFail(GNTST.bad_copy_arg, `dest [${op.dest.u}, +${op.len}) is past ${GNTTAB_COPY_BUF_MAX} bytes`);
    to.set(from);
    return GNTST.okay;
  } catch (e) {
    if (e instanceof PinFail) return e.status;
    throw e;
  } finally {
    if (src) releaseBuf(src);
    if (dst) releaseBuf(dst);
  }
}

/** The ops of a gnttab.copy call (struct gnttab_copy array) and its source buffer; EINVAL/E2BIG naming what is malformed. */
export function parseCopyCall(raw: unknown): { ops: GnttabCopyFields[]; source: Uint8Array | null } {
  const op = 'gnttab.copy';
  const a = argObject(op, raw);
  // One struct more than a batch gets through, so gnttabCopyCount can say how many entries it had.
  const bytes = argBytes(op, a, 'ops', (GNTTAB_MAX_BATCH + 1) * GNTTAB_COPY_STRUCT.size);
  gnttabCopyCount(op, bytes); // a whole number of structs, at most GNTTAB_MAX_BATCH
  const source = a.data === undefined || a.data === null ? null : argBytes(op, a, 'data', GNTTAB_COPY_BUF_MAX);
  return { ops: readGnttabCopies(bytes), source };
}

/** Whether op `c`'s dest is a message buffer (and not also a grant, which fails it). */
function destIsBuffer(c: GnttabCopyFields): boolean {
  return (c.flags & (GNTCOPY_xenbox_dest_buf | GNTCOPY_dest_gref)) === GNTCOPY_xenbox_dest_buf;
}

/**
 * The reply's dest buffer: as long as the furthest in-range message-buffer
 * dest, and zeroed where no op will have written.  When the dests tile it
 * in op order (how libxen lays them out), every byte is some op's, so only
 * the ranges of ops that failed need zeroing afterwards (zeroFailedDests);
 * otherwise it is zeroed whole first.
 */
function destBuffer(ops: readonly GnttabCopyFields[], statusBytes: number): { reply: Uint8Array; destBytes: number; tiled: boolean } {
  let end = 0;
  let tiled = true;
  for (const c of ops) {
    if (!destIsBuffer(c)) continue;
    const e = c.dest.u + c.len;
    if (e > GNTTAB_COPY_BUF_MAX) continue;
    if (c.dest.u !== end) tiled = false;
    if (e > end) end = e;
  }
  // Its own allocation, written here and then only read: handed to the
  // transport, it leaves as the reply's bulk part without a copy (@xenbox/abi
  // frame-bulk.ts).  The statuses follow the dest bytes in it.
  const reply = handOverBulk(tiled ? Buffer.allocUnsafeSlow(end + statusBytes) : new Uint8Array(end + statusBytes));
  return { reply, destBytes: end, tiled };
}

/** Zero the dest ranges of the ops that failed, so the reply carries nothing of the hypervisor's memory. */
function zeroFailedDests(ops: readonly GnttabCopyFields[], status: DataView, dest: Uint8Array): void {
  for (let i = 0; i < ops.length; i++) {
    const c = ops[i]!;
    if (status.getInt16(2 * i, true) !== GNTST.okay && destIsBuffer(c) && c.dest.u + c.len <= dest.byteLength) dest.fill(0, c.dest.u, c.dest.u + c.len);
  }
}

/** GNTTABOP_copy: every op in turn, a status each (int16 LE), the dest bytes beside them. */
export function gnttabCopy(hv: Hypervisor, caller: Domain, raw: unknown): GnttabCopyReply {
  const { ops, source } = parseCopyCall(raw);
  const { reply, destBytes, tiled } = destBuffer(ops, 2 * ops.length);
  const dest = destBytes ? reply.subarray(0, destBytes) : null;
  const status = reply.subarray(destBytes);
  const sv = new DataView(status.buffer, status.byteOffset, status.byteLength);
  for (let i = 0; i < ops.length; i++) sv.setInt16(2 * i, copyOne(hv, caller, ops[i]!, { source, dest }), true);
  if (tiled && dest) zeroFailedDests(ops, sv, dest);
  return { data: dest, status };
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
    'gnttab.copy': { priv: 'hook', handle: (caller, raw) => gnttabCopy(hv, caller, raw) },
  };
}

