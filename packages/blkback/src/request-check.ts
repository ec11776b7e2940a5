/**
 * Checking a blkif request before anything is done for it, as Linux
 * xen-blkback does in dispatch_rw_block_io(), xen_blkbk_parse_indirect(),
 * dispatch_discard_io() and vbd_translate() (drivers/block/xen-blkback/
 * blkback.c): a request only ever becomes a plan of grant copies and image
 * I/O once every number in it has been checked against the vbd.  The input
 * is the private copy of the ring slot (RING_COPY_REQUEST), never the shared
 * page.
 */
import {
  BLKIF_DISCARD_SECURE,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_SECTOR_SIZE,
  BLKIF_SECTORS_PER_PAGE,
  BLKIF_SEGMENT_SIZE,
  BLKIF_SEGS_PER_INDIRECT_FRAME,
  blkifIndirectPages,
  blkifOpName,
  decodeBlkifSegment,
  type BlkifRequest,
  type BlkifSegment,
} from '@xenbox/abi';

/** What a request may touch: the vbd as negotiated. */
export interface VbdLimits {
  /** Size in 512-byte sectors. */
  sectors: number;
  readOnly: boolean;
  discard: boolean;
  /** feature-max-indirect-segments we offered. */
  maxIndirectSegments: number;
}

/** One segment as a grant copy: `len` bytes at `offset` in the granted page. */
export interface SegmentCopy {
  gref: number;
  offset: number;
  len: number;
}

export type RequestPlan =
  | { kind: 'read' | 'write'; id: bigint; rspOp: number; sector: number; bytes: number; segments: SegmentCopy[] }
  /** Flush (and, for a barrier, drain first); `then` is a write that rides with it (blkif.h allows segments on a flush). */
  | { kind: 'flush'; id: bigint; rspOp: number; barrier: boolean; then: RequestPlan | null }
  | { kind: 'discard'; id: bigint; rspOp: number; sector: number; nrSectors: number }
  /** Indirect: the descriptor pages must be fetched, then checkIndirectSegments(). */
  | { kind: 'indirect'; id: bigint; rspOp: number; sector: number; nrSegments: number; pages: number[] }
  | { kind: 'refuse'; id: bigint; rspOp: number; status: number; why: string };

function refuse(id: bigint, rspOp: number, why: string, status = BLKIF_RSP_ERROR): RequestPlan {
  return { kind: 'refuse', id, rspOp, status, why };
}

/** vbd_translate(): a range inside the disk, and no write to a read-only one. */
function rangeProblem(limits: VbdLimits, sector: number, nrSectors: number, writes: boolean): string | null {
  if (writes && limits.readOnly) return 'write to a read-only vbd';
  if (!Number.isSafeInteger(sector) || sector + nrSectors > limits.sectors) {
    return `sectors ${sector}+${nrSectors} beyond the end of the vbd (${limits.sectors} sectors)`;
  }
  return null;
}

/** Segments -> grant copies, checking first_sect <= last_sect < 8 (xen_blkbk_parse_indirect / dispatch_rw_block_io). */
function segmentCopies(segs: BlkifSegment[]): { copies: SegmentCopy[]; sectors: number } | string {
  const copies: SegmentCopy[] = [];
  let sectors = 0;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (s.lastSect >= BLKIF_SECTORS_PER_PAGE || s.firstSect > s.lastSect) {
      return `segment ${i}: first_sect ${s.firstSect}, last_sect ${s.lastSect} (need first <= last <= ${BLKIF_SECTORS_PER_PAGE - 1})`;
    }
    const n = s.lastSect - s.firstSect + 1;
    copies.push({ gref: s.gref, offset: s.firstSect * BLKIF_SECTOR_SIZE, len: n * BLKIF_SECTOR_SIZE });
    sectors += n;
  }
  return { copies, sectors };
}

function rwPlan(limits: VbdLimits, id: bigint, op: number, rspOp: number, sector: number, segs: BlkifSegment[]): RequestPlan {
  const c = segmentCopies(segs);
  if (typeof c === 'string') return refuse(id, rspOp, c);
  const problem = rangeProblem(limits, sector, c.sectors, op !== BLKIF_OP_READ);
  if (problem) return refuse(id, rspOp, problem);
  return { kind: op === BLKIF_OP_READ ? 'read' : 'write', id, rspOp, sector, bytes: c.sectors * BLKIF_SECTOR_SIZE, segments: c.copies };
}

/** Check a decoded request; what comes back is either a plan or a refusal with the status to answer. */
export function checkRequest(req: BlkifRequest, limits: VbdLimits): RequestPlan {
  switch (req.kind) {
    case 'other':
      return refuse(req.id, req.operation, `${blkifOpName(req.operation)} is not supported`, BLKIF_RSP_EOPNOTSUPP);
    case 'discard': {
      if (!limits.discard) return refuse(req.id, BLKIF_OP_DISCARD, 'discard is not enabled on this vbd', BLKIF_RSP_EOPNOTSUPP);
      if (req.flag & BLKIF_DISCARD_SECURE) return refuse(req.id, BLKIF_OP_DISCARD, 'secure discard is not offered', BLKIF_RSP_EOPNOTSUPP);
      const problem = rangeProblem(limits, req.sector, req.nrSectors, true);
      if (problem) return refuse(req.id, BLKIF_OP_DISCARD, problem);
      return { kind: 'discard', id: req.id, rspOp: BLKIF_OP_DISCARD, sector: req.sector, nrSectors: req.nrSectors };
    }
    case 'indirect': {
      const op = req.indirectOp;
      // The response carries the indirect op, as Linux's pending_req->operation does (blkfront checks it).
      if (op !== BLKIF_OP_READ && op !== BLKIF_OP_WRITE) return refuse(req.id, op, `indirect request with ${blkifOpName(op)} (only read or write)`);
      if (req.nrSegments === 0 || req.nrSegments > limits.maxIndirectSegments) {
        return refuse(req.id, op, `indirect request with ${req.nrSegments} segments (1..${limits.maxIndirectSegments})`);
      }
      if (op === BLKIF_OP_WRITE && limits.readOnly) return refuse(req.id, op, 'write to a read-only vbd');
      const pages = req.indirectGrefs.slice(0, blkifIndirectPages(req.nrSegments));
      return { kind: 'indirect', id: req.id, rspOp: op, sector: req.sector, nrSegments: req.nrSegments, pages };
    }
    case 'rw': {
      const { operation: op, id } = req;
      const flush = op === BLKIF_OP_FLUSH_DISKCACHE || op === BLKIF_OP_WRITE_BARRIER;
      if ((req.nrSegments === 0 && !flush) || req.nrSegments > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        return refuse(id, op, `${blkifOpName(op)} with ${req.nrSegments} segments (1..${BLKIF_MAX_SEGMENTS_PER_REQUEST})`);
      }
      if (!flush) return rwPlan(limits, id, op, op, req.sector, req.segments);
      // A flush is a write to the disk cache: vbd_translate refuses it on a read-only vbd, as Linux does.
      if (limits.readOnly) return refuse(id, op, `${blkifOpName(op)} on a read-only vbd`);
      const then = req.nrSegments === 0 ? null : rwPlan(limits, id, BLKIF_OP_WRITE, op, req.sector, req.segments);
      if (then?.kind === 'refuse') return then;
      return { kind: 'flush', id, rspOp: op, barrier: op === BLKIF_OP_WRITE_BARRIER, then };
    }
  }
}

/**
 * The segments of an indirect request, from the bytes of its descriptor
 * pages (fetched by grant copy, so a private copy): each checked like a
 * direct request's, then the whole range against the vbd.
 */
export function checkIndirectSegments(plan: Extract<RequestPlan, { kind: 'indirect' }>, pages: Uint8Array[], limits: VbdLimits): RequestPlan {
  const segs: BlkifSegment[] = [];
  for (let i = 0; i < plan.nrSegments; i++) {
    const page = pages[Math.floor(i / BLKIF_SEGS_PER_INDIRECT_FRAME)]!;
    segs.push(decodeBlkifSegment(page, (i % BLKIF_SEGS_PER_INDIRECT_FRAME) * BLKIF_SEGMENT_SIZE));
  }
  return rwPlan(limits, plan.id, plan.rspOp, plan.rspOp, plan.sector, segs);
}

