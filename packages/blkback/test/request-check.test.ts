/**
 * blkif byte layouts (x86_64/RV64, blkif.h) and blkback's request checks
 * (Linux xen-blkback's dispatch_rw_block_io / xen_blkbk_parse_indirect /
 * dispatch_discard_io / vbd_translate).
 */
import { describe, expect, it } from 'vitest';
import {
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_RING_SIZE,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  decodeBlkifRequest,
  decodeBlkifResponse,
  encodeBlkifDiscard,
  encodeBlkifIndirect,
  encodeBlkifRequest,
  encodeBlkifResponse,
  encodeBlkifSegment,
} from '@xenbox/abi';
import { checkIndirectSegments, checkRequest, type VbdLimits } from '../src/request-check.js';

const limits: VbdLimits = { sectors: 2048, readOnly: false, discard: true, maxIndirectSegments: 256 };
const seg = (gref: number, firstSect = 0, lastSect = 7) => ({ gref, firstSect, lastSect });

describe('blkif layouts', () => {
  it('puts a read/write request where blkif.h does on a 64-bit ABI (hole before id)', () => {
    const b = encodeBlkifRequest({ operation: BLKIF_OP_WRITE, handle: 0xbeef, id: 0x1122334455667788n, sector: 0x1_0000_0002, segments: [seg(0xaabbccdd, 1, 6), seg(7)] });
    const dv = new DataView(b.buffer);
    expect(b.length).toBe(112);
    expect([b[0], b[1], dv.getUint16(2, true), dv.getUint32(4, true)]).toEqual([1, 2, 0xbeef, 0]);
    expect(dv.getBigUint64(8, true)).toBe(0x1122334455667788n);
    expect(dv.getBigUint64(16, true)).toBe(0x1_0000_0002n);
    expect([dv.getUint32(24, true), b[28], b[29], dv.getUint32(32, true)]).toEqual([0xaabbccdd, 1, 6, 7]);
    expect(decodeBlkifRequest(b)).toMatchObject({ kind: 'rw', operation: 1, nrSegments: 2, handle: 0xbeef, sector: 0x1_0000_0002, segments: [seg(0xaabbccdd, 1, 6), seg(7)] });
  });

  it('lays out discard, indirect and response as blkif.h', () => {
    const d = new DataView(encodeBlkifDiscard({ handle: 3, id: 9n, sector: 100, nrSectors: 0x2_0000_0000, flag: 1 }).buffer);
    expect([d.getUint8(0), d.getUint8(1), d.getUint16(2, true), d.getBigUint64(8, true), d.getBigUint64(16, true), d.getBigUint64(24, true)]).toEqual([5, 1, 3, 9n, 100n, 0x2_0000_0000n]);
    const i = new DataView(encodeBlkifIndirect({ indirectOp: BLKIF_OP_READ, nrSegments: 300, handle: 0x1234, id: 5n, sector: 8, indirectGrefs: [11, 12] }).buffer);
    expect([i.getUint8(0), i.getUint8(1), i.getUint16(2, true), i.getBigUint64(8, true), i.getBigUint64(16, true), i.getUint16(24, true), i.getUint32(28, true), i.getUint32(32, true)]).toEqual([6, 0, 300, 5n, 8n, 0x1234, 11, 12]);
    const r = encodeBlkifResponse({ id: 0xffff_ffff_ffff_fffen, operation: 6, status: -2 });
    const rv = new DataView(r.buffer);
    expect([r.length, rv.getBigUint64(0, true), rv.getUint8(8), rv.getInt16(10, true)]).toEqual([16, 0xffff_ffff_ffff_fffen, 6, -2]);
    expect(decodeBlkifResponse(r)).toEqual({ id: 0xffff_ffff_ffff_fffen, operation: 6, status: -2 });
    expect(BLKIF_RING_SIZE).toBe(32);
  });

  it('never decodes more than 11 segments from a direct request, whatever nr_segments says', () => {
    const b = encodeBlkifRequest({ operation: BLKIF_OP_READ, handle: 0, id: 1n, sector: 0, segments: [seg(1)] });
    b[1] = 200;
    const r = decodeBlkifRequest(b);
    expect(r.kind === 'rw' && [r.nrSegments, r.segments.length]).toEqual([200, 11]);
  });
});

describe('request checks', () => {
  const rw = (op: number, sector: number, segs: ReturnType<typeof seg>[]) => checkRequest(decodeBlkifRequest(encodeBlkifRequest({ operation: op, handle: 0, id: 1n, sector, segments: segs })), limits);

  it('turns a good request into grant copies at the right page offsets', () => {
    expect(rw(BLKIF_OP_WRITE, 10, [seg(5, 2, 3), seg(6)])).toEqual({
      kind: 'write', id: 1n, rspOp: 1, sector: 10, bytes: 10 * 512,
      segments: [{ gref: 5, offset: 1024, len: 1024 }, { gref: 6, offset: 0, len: 4096 }],
    });
  });

  it('refuses what Linux blkback refuses', () => {
    expect(rw(BLKIF_OP_READ, 0, [seg(1, 5, 4)])).toMatchObject({ kind: 'refuse', status: BLKIF_RSP_ERROR });
    expect(rw(BLKIF_OP_READ, 0, [seg(1, 8, 8)])).toMatchObject({ kind: 'refuse', status: BLKIF_RSP_ERROR });
    expect(rw(BLKIF_OP_READ, 2047, [seg(1, 0, 1)])).toMatchObject({ kind: 'refuse', why: expect.stringMatching(/beyond the end/) });
    expect(rw(BLKIF_OP_READ, 2046, [seg(1, 0, 1)])).toMatchObject({ kind: 'read' });
    expect(rw(BLKIF_OP_WRITE, 0, [])).toMatchObject({ kind: 'refuse', status: BLKIF_RSP_ERROR });
    expect(rw(BLKIF_OP_FLUSH_DISKCACHE, 0, [])).toMatchObject({ kind: 'flush', then: null });
    expect(checkRequest(decodeBlkifRequest(encodeBlkifRequest({ operation: BLKIF_OP_WRITE, handle: 0, id: 1n, sector: 0, segments: [seg(1)] })), { ...limits, readOnly: true })).toMatchObject({ kind: 'refuse', why: 'write to a read-only vbd' });
    expect(checkRequest({ kind: 'other', operation: 42, id: 3n }, limits)).toMatchObject({ kind: 'refuse', status: BLKIF_RSP_EOPNOTSUPP, rspOp: 42 });
    expect(checkRequest(decodeBlkifRequest(encodeBlkifDiscard({ handle: 0, id: 1n, sector: 0, nrSectors: 8 })), { ...limits, discard: false })).toMatchObject({ status: BLKIF_RSP_EOPNOTSUPP });
    expect(checkRequest(decodeBlkifRequest(encodeBlkifDiscard({ handle: 0, id: 1n, sector: 2040, nrSectors: 9 })), limits)).toMatchObject({ status: BLKIF_RSP_ERROR });
    expect(checkRequest(decodeBlkifRequest(encodeBlkifDiscard({ handle: 0, id: 1n, sector: 2040, nrSectors: 8 })), limits)).toMatchObject({ kind: 'discard', rspOp: BLKIF_OP_DISCARD });
  });

  it('checks an indirect request, then each of its descriptors', () => {
    const ind = (op: number, n: number) => checkRequest(decodeBlkifRequest(encodeBlkifIndirect({ indirectOp: op, nrSegments: n, handle: 0, id: 2n, sector: 0, indirectGrefs: [40, 41] })), limits);
    expect(ind(BLKIF_OP_WRITE, 0)).toMatchObject({ kind: 'refuse' });
    expect(ind(BLKIF_OP_WRITE, 257)).toMatchObject({ kind: 'refuse' });
    expect(ind(BLKIF_OP_INDIRECT, 1)).toMatchObject({ kind: 'refuse', rspOp: BLKIF_OP_INDIRECT });
    const plan = ind(BLKIF_OP_WRITE, 20);
    expect(plan).toMatchObject({ kind: 'indirect', rspOp: BLKIF_OP_WRITE, pages: [40] });
    const page = new Uint8Array(4096);
    for (let k = 0; k < 20; k++) encodeBlkifSegment(page, k * 8, seg(100 + k));
    expect(checkIndirectSegments(plan as Extract<typeof plan, { kind: 'indirect' }>, [page], limits)).toMatchObject({ kind: 'write', bytes: 20 * 4096 });
    encodeBlkifSegment(page, 19 * 8, seg(119, 3, 1));
    expect(checkIndirectSegments(plan as Extract<typeof plan, { kind: 'indirect' }>, [page], limits)).toMatchObject({ kind: 'refuse', why: expect.stringMatching(/segment 19/) });
  });
});
