/**
 * `pnpm bench gnttab`: batched grant copy of 4 KiB pages, MB/s.
 *
 * A granter domain grants 64 of its pages to a mapper domain; the mapper
 * copies them into its own pages with one batched GNTTABOP_copy and reads
 * them through its mirrors (the copy and the mirror sync leave in one frame),
 * as a backend does with a request's segments.  Baseline from the same run:
 * raw ZeroMQ echo of the same 256 KiB to another process, counted as bytes
 * moved in both directions (so the baseline is, if anything, flattered).
 */
import { DOMID_SELF, GNTCOPY_source_gref, GNTST, ipcEndpoint, runDirLayout, type GnttabCopy } from '@xenbox/abi';
import { launchHypervisor } from '@xenbox/hypervisor';
import { GrantMapper, GrantTable, HypervisorConnection, Mirrors, allocOwnPages } from '@xenbox/libxen';
import { median, result, type Benchmark } from './harness.js';
import { echoOnce, startRawEcho } from './raw-echo.js';

const PAGES = 64;
const ROUNDS = 5;
const PER_ROUND = 100;

export const benchmark: Benchmark = {
  name: 'gnttab',
  description: 'batched grant copy of 4 KiB pages (MB/s) vs raw ZeroMQ transfer of the same bytes',
  async run({ tmpDir, progress }) {
    const hyp = await launchHypervisor(tmpDir);
    const dom0 = await HypervisorConnection.connect({ runDir: tmpDir, domid: 0, token: hyp.dom0Token });
    const g = await dom0.call('domctl.createdomain', { name: 'granter', kind: 'service' });
    const m = await dom0.call('domctl.createdomain', { name: 'mapper', kind: 'service' });
    const granter = await HypervisorConnection.connect({ runDir: tmpDir, domid: g.domid, token: g.token });
    const mapper = await HypervisorConnection.connect({ runDir: tmpDir, domid: m.domid, token: m.token });
    const raw = await startRawEcho(ipcEndpoint(`${runDirLayout(tmpDir).root}/raw-echo.sock`));
    try {
      const src = await allocOwnPages(granter, PAGES);
      src.forEach((p, i) => p.page.write(0, new Uint8Array(4096).fill(i)));
      const table = await GrantTable.open(granter, 1);
      const refs = src.map((p) => table.grantAccess(m.domid, p.gfn, true));
      await table.publish();
      await Mirrors.of(granter).sync(src.map((p) => p.page));
      const dst = await allocOwnPages(mapper, PAGES);
      const gm = new GrantMapper(mapper);
      const ops: GnttabCopy[] = refs.map((ref, i) => ({ source: { ref, domid: g.domid, offset: 0 }, dest: { gmfn: dst[i]!.gfn, domid: DOMID_SELF, offset: 0 }, len: 4096, flags: GNTCOPY_source_gref }));
      const mirrors = Mirrors.of(mapper);
      const copyOnce = async () => {
        const [statuses] = await Promise.all([gm.copy(ops), mirrors.sync(dst.map((d) => d.page))]);
        if (statuses.some((s) => s !== GNTST.okay)) throw new Error(`copy failed: ${statuses.join(',')}`);
      };
      await copyOnce();
      if (dst[7]!.page.u32(100) !== 0x07070707) throw new Error('copied bytes do not match');
      const payload = Buffer.alloc(PAGES * 4096, 1);
      const rate = async (bytesPerOp: number, once: () => Promise<unknown>) => {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < PER_ROUND; i++) await once();
        return (bytesPerOp * PER_ROUND) / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6;
      };
      progress('warming up');
      await rate(0, () => echoOnce(raw.dealer, payload));
      await rate(0, copyOnce);
      const rawMBs: number[] = [];
      const gntMBs: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        progress(`round ${r + 1}/${ROUNDS}`);
        rawMBs.push(await rate(2 * payload.length, () => echoOnce(raw.dealer, payload)));
        gntMBs.push(await rate(payload.length, copyOnce));
      }
      return [result(`grant copy, ${PAGES} x 4 KiB per batch (median of rounds)`, median(gntMBs), 'MB/s', median(rawMBs), '>= 0.7x raw ZeroMQ transfer')];
    } finally {
      raw.stop();
      await granter.close();
      await mapper.close();
      await dom0.close();
      await hyp.stop();
    }
  },
};
