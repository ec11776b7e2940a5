/**
 * `pnpm bench frame`: what framing a 64 × 4 KiB grant copy batch costs in
 * one process, in CPU time (process.cpuUsage, so the other jobs on a shared
 * machine move it less than a wall clock): the request (64 op maps) and the
 * read reply (64 × {status, data}), with the bytes inline as msgpack bin
 * (encodeFrame, the one-part form) against the bulk part (encodeParts,
 * abi frame-bulk.ts), the reply's bytes handed over as the hypervisor does.
 * The pieces of bench/RESULTS.md "## gnttab", reproducible.
 */
import { DOMID_SELF, GNTCOPY_source_gref, decodeFrame, decodeParts, encodeFrame, encodeParts, handOverBulk } from '@xenbox/abi';
import { median, result, type Benchmark } from './harness.js';

const PAGES = 64;
const ROUNDS = 5;
const PER_ROUND = 2000;

/** µs of CPU per call of `f`, median of ROUNDS rounds. */
function cpuUs(f: () => unknown): number {
  for (let i = 0; i < PER_ROUND / 4; i++) f();
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < PER_ROUND; i++) f();
    const c = process.cpuUsage(c0);
    rounds.push((c.user + c.system) / PER_ROUND);
  }
  return median(rounds);
}

export const benchmark: Benchmark = {
  name: 'frame',
  description: 'framing CPU for a 64 x 4 KiB grant copy batch: bytes inline (msgpack bin) vs bulk part',
  async run({ progress }) {
    const ops = Array.from({ length: PAGES }, (_, i) => ({ source: { ref: 8 + i, domid: 1, offset: 0 }, dest: { inline: true, domid: DOMID_SELF, offset: 0 }, len: 4096, flags: GNTCOPY_source_gref }));
    const call = { id: 7, op: 'gnttab.copy', args: { ops } };
    const guest = new Uint8Array(new SharedArrayBuffer(PAGES * 4096)).fill(3);
    // The reply as the hypervisor builds it: one handed-over buffer, a view per op.
    const makeReply = () => {
      const buf = handOverBulk(Buffer.allocUnsafeSlow(PAGES * 4096));
      const ok = new Array(PAGES);
      for (let i = 0; i < PAGES; i++) {
        const data = buf.subarray(i * 4096, (i + 1) * 4096);
        data.set(guest.subarray(i * 4096, (i + 1) * 4096));
        ok[i] = { status: 0, data };
      }
      return { id: 7, ok };
    };
    const reply = makeReply();
    const inlineFrame = Buffer.from(encodeFrame(reply));
    const bulkParts = encodeParts(reply).map((p) => Buffer.from(p));
    const requestParts = encodeParts(call).map((p) => Buffer.from(p));

    progress('request');
    const encReq = cpuUs(() => encodeParts(call));
    const decReq = cpuUs(() => decodeParts(requestParts));
    progress('reply');
    const build = cpuUs(makeReply);
    const encInline = cpuUs(() => encodeFrame(reply));
    const encBulk = cpuUs(() => encodeParts(reply));
    const decInline = cpuUs(() => decodeFrame(inlineFrame));
    const decBulk = cpuUs(() => decodeParts(bulkParts));
    return [
      result(`encode the ${PAGES}-op request`, encReq, 'µs CPU', null, null),
      result(`decode the ${PAGES}-op request`, decReq, 'µs CPU', null, null),
      result(`build the read reply (one buffer, ${PAGES} copies out of a SharedArrayBuffer)`, build, 'µs CPU', null, null),
      result('encode the read reply: bulk part vs bytes inline', encBulk, 'µs CPU', encInline, null),
      result('decode the read reply: bulk part vs bytes inline', decBulk, 'µs CPU', decInline, null),
    ];
  },
};
