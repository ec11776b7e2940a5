/**
 * `pnpm bench frame`: what framing a 64 × 4 KiB grant copy batch costs in
 * one process, in CPU time (process.cpuUsage, so the other jobs on a shared
 * machine move it less than a wall clock): the request as Xen's struct
 * gnttab_copy array (abi gnttab-copy.ts, the wire form) against the msgpack
 * map per op it replaced, and the read reply (statuses + the bytes) with the
 * bytes in the bulk part (encodeParts, abi frame-bulk.ts, handed over as the
 * hypervisor does) against inline msgpack bin and against a map per op.
 * The pieces of bench/RESULTS.md "## gnttab", reproducible.
 */
import {
  DOMID_SELF,
  GNTCOPY_source_gref,
  GNTCOPY_xenbox_dest_buf,
  GnttabCopyStatuses,
  GnttabCopyWriter,
  decodeFrame,
  decodeParts,
  encodeFrame,
  encodeParts,
  handOverBulk,
  readGnttabCopies,
} from '@xenbox/abi';
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
  description: 'framing CPU for a 64 x 4 KiB grant copy batch: struct gnttab_copy array vs one msgpack map per op, bytes in the bulk part vs inline',
  async run({ progress }) {
    // The request: Xen's struct array (the wire form) against the map per op it replaced.
    const w = new GnttabCopyWriter(PAGES);
    for (let i = 0; i < PAGES; i++) w.set(i, 8 + i, 1, 0, i * 4096, DOMID_SELF, 0, 4096, GNTCOPY_source_gref | GNTCOPY_xenbox_dest_buf);
    const call = { id: 7, op: 'gnttab.copy', args: { ops: w.ops } };
    const mapOps = Array.from({ length: PAGES }, (_, i) => ({ source: { ref: 8 + i, domid: 1, offset: 0 }, dest: { inline: true, domid: DOMID_SELF, offset: 0 }, len: 4096, flags: GNTCOPY_source_gref }));
    const mapCall = { id: 7, op: 'gnttab.copy', args: { ops: mapOps } };
    const guest = new Uint8Array(new SharedArrayBuffer(PAGES * 4096)).fill(3);
    // The reply as the hypervisor builds it: one handed-over buffer, the bytes then the statuses.
    const makeReply = () => {
      const buf = handOverBulk(Buffer.allocUnsafeSlow(PAGES * 4096 + 2 * PAGES));
      buf.set(guest, 0);
      buf.fill(0, PAGES * 4096);
      return { id: 7, ok: { data: buf.subarray(0, PAGES * 4096), status: buf.subarray(PAGES * 4096) } };
    };
    // The reply of the map form: a {status, data} map per op.
    const makeMapReply = () => {
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
    const mapReply = makeMapReply();
    const inlineFrame = Buffer.from(encodeFrame(reply));
    const bulkParts = encodeParts(reply).map((p) => Buffer.from(p));
    const mapReplyParts = encodeParts(mapReply).map((p) => Buffer.from(p));
    const requestParts = encodeParts(call).map((p) => Buffer.from(p));
    const mapRequestParts = encodeParts(mapCall).map((p) => Buffer.from(p));
    const readStatuses = (msg: unknown) => {
      const m = msg as { ok: { status: Uint8Array } };
      const st = new GnttabCopyStatuses(m.ok.status, PAGES);
      let sum = 0;
      for (let i = 0; i < PAGES; i++) sum += st.get(i);
      return sum;
    };

    progress('request');
    const encReq = cpuUs(() => encodeParts(call));
    const encMapReq = cpuUs(() => encodeParts(mapCall));
    const decReq = cpuUs(() => readGnttabCopies((decodeParts(requestParts)[0] as { args: { ops: Uint8Array } }).args.ops));
    const decMapReq = cpuUs(() => decodeParts(mapRequestParts));
    progress('reply');
    const build = cpuUs(makeReply);
    const encInline = cpuUs(() => encodeFrame(reply));
    const encBulk = cpuUs(() => encodeParts(reply));
    const encMap = cpuUs(() => encodeParts(mapReply));
    const decInline = cpuUs(() => readStatuses(decodeFrame(inlineFrame)[0]));
    const decBulk = cpuUs(() => readStatuses(decodeParts(bulkParts)[0]));
    const decMap = cpuUs(() => decodeParts(mapReplyParts));
    return [
      result(`encode the ${PAGES}-op request: struct array vs a map per op`, encReq, 'µs CPU', encMapReq, null),
      result(`decode the ${PAGES}-op request (to op records): struct array vs a map per op`, decReq, 'µs CPU', decMapReq, null),
      result(`build the read reply (one buffer, one copy out of a SharedArrayBuffer)`, build, 'µs CPU', null, null),
      result('encode the read reply: bulk part vs bytes inline', encBulk, 'µs CPU', encInline, null),
      result('encode the read reply: statuses + bulk vs a map per op', encBulk, 'µs CPU', encMap, null),
      result('decode the read reply and its statuses: bulk part vs bytes inline', decBulk, 'µs CPU', decInline, null),
      result('decode the read reply: statuses + bulk vs a map per op', decBulk, 'µs CPU', decMap, null),
    ];
  },
};
