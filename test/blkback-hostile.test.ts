/**
 * A hostile front end against blkback: malformed and lying requests put
 * straight into its ring slots.  Each gets an error response (or, for a
 * req_prod that runs ahead of the ring, the device is shut: error node and
 * Closing), while another guest's vbd in the same blkback process is served
 * all along and not one byte of its image changes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BLKIF_MAX_INDIRECT_SEGMENTS,
  BLKIF_OP_DISCARD,
  BLKIF_OP_READ,
  BLKIF_OP_RESERVED_1,
  BLKIF_OP_WRITE,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  XenbusState,
  encodeBlkifDiscard,
  encodeBlkifIndirect,
  encodeBlkifOther,
  encodeBlkifRequest,
  encodeBlkifSegment,
  type BlkifResponse,
} from '@xenbox/abi';
import { Blkfront } from '@xenbox/libxen';
import { BlkStack } from './helpers/blk-stack.js';

const MiB = 1024 * 1024;
const DEVID = 51712;
const SECTORS = (1 * MiB) / 512;

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
}

/** Ids far above the ones blkfront hands out, so their responses come to `raw`. */
let nextId = 1n << 40n;
const id = () => nextId++;

describe.each([
  { mode: 'grant copy', persistentGrants: false },
  { mode: 'persistent grants', persistentGrants: true },
])('a hostile front end against blkback using $mode', ({ persistentGrants }) => {
  let s: BlkStack;
  let dir: string;
  beforeAll(async () => {
    s = await BlkStack.up('blkh', { persistentGrants });
    dir = mkdtempSync('/tmp/xb-blkh-');
  }, 60_000);
  afterAll(async () => {
    await s?.down();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gets an error for every bad request, cannot touch another vbd, and a lying req_prod shuts only its own device', async () => {
    // The victim: another guest whose vbd the same blkback serves.
    const victimImage = join(dir, 'victim.raw');
    const victimData = bytes(1 * MiB, 7);
    writeFileSync(victimImage, victimData);
    const v = await s.frontDomain('victim');
    await s.addVbd({ frontend: v.domid, devid: DEVID, params: `raw:${victimImage}` });
    const victim = await Blkfront.connect({ hv: v.hv, xs: v.xs, domid: v.domid, devid: DEVID });
    let victimReads = 0;
    let victimBad = 0;
    let stop = false;
    const victimLoop = (async () => {
      while (!stop) {
        const got = await victim.read(0, SECTORS);
        if (Buffer.compare(got, victimData) !== 0) victimBad++;
        victimReads++;
      }
    })();

    // The attacker, with its own image.
    const evilImage = join(dir, 'evil.raw');
    writeFileSync(evilImage, new Uint8Array(1 * MiB));
    const e = await s.frontDomain('evil');
    await s.addVbd({ frontend: e.domid, devid: DEVID, params: `raw:${evilImage}` });
    const evil = await Blkfront.connect({ hv: e.hv, xs: e.xs, domid: e.domid, devid: DEVID, reconnect: false });
    const raw = evil.raw;
    const pages = await raw.grantPages(16);
    const seg = (i: number, first = 0, last = 7) => ({ gref: pages[i]!.ref, firstSect: first, lastSect: last });
    const handle = DEVID & 0xffff;

    const cases: Array<{ what: string; entry: Uint8Array; want: number }> = [];
    const add = (what: string, want: number, make: (id: bigint) => Uint8Array) => cases.push({ what, want, entry: make(id()) });
    add('a sane read (control)', BLKIF_RSP_OKAY, (i) => encodeBlkifRequest({ operation: BLKIF_OP_READ, handle, id: i, sector: 0, segments: [seg(0)] }));
    add('an ungranted grant ref', BLKIF_RSP_ERROR, (i) => encodeBlkifRequest({ operation: BLKIF_OP_WRITE, handle, id: i, sector: 0, segments: [{ gref: 4000, firstSect: 0, lastSect: 7 }] }));
    add('a grant ref outside the table', BLKIF_RSP_ERROR, (i) => encodeBlkifRequest({ operation: BLKIF_OP_READ, handle, id: i, sector: 0, segments: [{ gref: 0xfffffff0, firstSect: 0, lastSect: 7 }] }));
    add('sectors past the end', BLKIF_RSP_ERROR, (i) => encodeBlkifRequest({ operation: BLKIF_OP_WRITE, handle, id: i, sector: SECTORS - 4, segments: [seg(1)] }));
    add('a sector number near 2^64', BLKIF_RSP_ERROR, (i) => encodeBlkifRequest({ operation: BLKIF_OP_READ, handle, id: i, sector: 2 ** 63, segments: [seg(1)] }));
    add('12 segments without indirect', BLKIF_RSP_ERROR, (i) => {
      const r = encodeBlkifRequest({ operation: BLKIF_OP_READ, handle, id: i, sector: 0, segments: Array.from({ length: 11 }, (_, k) => seg(k)) });
      r[1] = 12;
      return r;
    });
    add('255 segments without indirect', BLKIF_RSP_ERROR, (i) => {
      const r = encodeBlkifRequest({ operation: BLKIF_OP_WRITE, handle, id: i, sector: 0, segments: [seg(0)] });
      r[1] = 255;
      return r;
    });
    add('a read with no segments', BLKIF_RSP_ERROR, (i) => encodeBlkifRequest({ operation: BLKIF_OP_READ, handle, id: i, sector: 0, segments: [] }));
    add('last_sect < first_sect', BLKIF_RSP_ERROR, (i) => encodeBlkifRequest({ operation: BLKIF_OP_WRITE, handle, id: i, sector: 0, segments: [seg(2, 5, 3)] }));
    add('first_sect > 7', BLKIF_RSP_ERROR, (i) => encodeBlkifRequest({ operation: BLKIF_OP_WRITE, handle, id: i, sector: 0, segments: [seg(2, 8, 9)] }));
    add('last_sect > 7', BLKIF_RSP_ERROR, (i) => encodeBlkifRequest({ operation: BLKIF_OP_READ, handle, id: i, sector: 0, segments: [seg(2, 0, 200)] }));
    add('an unknown op (99)', BLKIF_RSP_EOPNOTSUPP, (i) => encodeBlkifOther(99, i));
    add('BLKIF_OP_RESERVED_1', BLKIF_RSP_EOPNOTSUPP, (i) => encodeBlkifOther(BLKIF_OP_RESERVED_1, i));
    add('a secure discard', BLKIF_RSP_EOPNOTSUPP, (i) => encodeBlkifDiscard({ handle, id: i, sector: 0, nrSectors: 8, flag: 1 }));
    add('a discard past the end', BLKIF_RSP_ERROR, (i) => encodeBlkifDiscard({ handle, id: i, sector: SECTORS - 1, nrSectors: 8 }));
    add('an indirect request with no segments', BLKIF_RSP_ERROR, (i) => encodeBlkifIndirect({ indirectOp: BLKIF_OP_READ, nrSegments: 0, handle, id: i, sector: 0, indirectGrefs: [pages[3]!.ref] }));
    add('an indirect request with 257 segments', BLKIF_RSP_ERROR, (i) => encodeBlkifIndirect({ indirectOp: BLKIF_OP_READ, nrSegments: BLKIF_MAX_INDIRECT_SEGMENTS + 1, handle, id: i, sector: 0, indirectGrefs: [pages[3]!.ref] }));
    add('an indirect discard', BLKIF_RSP_ERROR, (i) => encodeBlkifIndirect({ indirectOp: BLKIF_OP_DISCARD, nrSegments: 1, handle, id: i, sector: 0, indirectGrefs: [pages[3]!.ref] }));
    add('an indirect page that is not granted', BLKIF_RSP_ERROR, (i) => encodeBlkifIndirect({ indirectOp: BLKIF_OP_WRITE, nrSegments: 20, handle, id: i, sector: 0, indirectGrefs: [4001] }));
    // Garbage descriptors: random first/last sectors and refs.
    pages[4]!.page.write(0, bytes(4096, 99));
    add('an indirect page of garbage', BLKIF_RSP_ERROR, (i) => encodeBlkifIndirect({ indirectOp: BLKIF_OP_WRITE, nrSegments: 200, handle, id: i, sector: 0, indirectGrefs: [pages[4]!.ref] }));
    // Well-formed descriptors except one (segment 13: last < first).
    const desc = new Uint8Array(4096);
    for (let k = 0; k < 16; k++) encodeBlkifSegment(desc, k * 8, k === 13 ? seg(k % 4, 6, 2) : seg(k % 4));
    pages[5]!.page.write(0, desc);
    add('an indirect page with one bad descriptor', BLKIF_RSP_ERROR, (i) => encodeBlkifIndirect({ indirectOp: BLKIF_OP_WRITE, nrSegments: 16, handle, id: i, sector: 0, indirectGrefs: [pages[5]!.ref] }));

    const before = readFileSync(evilImage);
    await raw.push(cases.map((c) => c.entry));
    const answers = await raw.take(cases.length);
    const byId = new Map<bigint, BlkifResponse>(answers.map((r) => [r.id, r]));
    const got = cases.map((c, k) => ({ what: c.what, status: byId.get(idOf(c.entry))?.status, k }));
    expect(got).toEqual(cases.map((c, k) => ({ what: c.what, status: c.want, k })));
    // Nothing was written to the attacker's own image by any refused write.
    expect(Buffer.compare(readFileSync(evilImage), before)).toBe(0);

    // A reused id: the first request (a big indirect read) is still in flight when its twin arrives.
    const big = new Uint8Array(4096);
    for (let k = 0; k < 256; k++) encodeBlkifSegment(big, k * 8, seg(k % 16));
    pages[6]!.page.write(0, big);
    const twin = id();
    await raw.push([
      encodeBlkifIndirect({ indirectOp: BLKIF_OP_READ, nrSegments: 256, handle, id: twin, sector: 0, indirectGrefs: [pages[6]!.ref] }),
      encodeBlkifRequest({ operation: BLKIF_OP_WRITE, handle, id: twin, sector: 0, segments: [seg(0)] }),
    ]);
    const twins = await raw.take(2);
    expect(twins.map((r) => r.id)).toEqual([twin, twin]);
    expect(twins.map((r) => r.status).sort()).toEqual([BLKIF_RSP_ERROR, BLKIF_RSP_OKAY]);
    expect(Buffer.compare(readFileSync(evilImage), before)).toBe(0);

    // 300 random slots: each answered once, with a status blkif.h defines; the process stays up.
    for (let round = 0; round < 10; round++) {
      const junk = Array.from({ length: 30 }, (_, k) => {
        const b = bytes(112, round * 1000 + k + 1);
        new DataView(b.buffer).setBigUint64(8, id(), true);
        return b;
      });
      await raw.push(junk);
      const rs = await raw.take(30);
      for (const r of rs) expect([BLKIF_RSP_OKAY, BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP]).toContain(r.status);
    }

    // Finally req_prod far ahead of the ring: the device is shut, with a reason.
    const bb = await s.blkbackDomid();
    await raw.setReqProd(raw.ring.reqProdPvt + 1000);
    await waitFor(async () => (await s.backendState(e.domid, DEVID)) === XenbusState.Closing);
    const why = await s.xs.read(`/local/domain/${bb}/error/backend/vbd/${e.domid}/${DEVID}/error`);
    expect(why).toMatch(/^5 serving the ring: .*claims \d+ requests in a ring of 32/);

    // The victim was served all along, and its image is untouched.
    stop = true;
    await victimLoop;
    expect(victimBad).toBe(0);
    expect(victimReads).toBeGreaterThan(3);
    expect(await s.backendState(v.domid, DEVID)).toBe(XenbusState.Connected);
    expect(Buffer.compare(await victim.read(0, SECTORS), victimData)).toBe(0);
    await victim.write(8, bytes(4096, 3));
    const disk = readFileSync(victimImage);
    const expected = Buffer.from(victimData);
    expected.set(bytes(4096, 3), 8 * 512);
    expect(Buffer.compare(disk, expected)).toBe(0);
    expect(s.service('blkback')?.restarts).toBe(0);
    await victim.close();
  }, 60_000);
});

function idOf(entry: Uint8Array): bigint {
  return new DataView(entry.buffer, entry.byteOffset).getBigUint64(8, true);
}

async function waitFor(pred: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
