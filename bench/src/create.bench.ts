/**
 * `pnpm bench create`: what creating a guest costs (issue #7; LightVM,
 * SOSP'17, booted Xen guests in 2.3 ms once xenstore left the creation path
 * and kept creation time flat as guests were added).
 *
 * - library create (libxl's createGuest, as xl runs it) of a small PVH guest
 *   that powers off at its first instructions: create call, and create ->
 *   the guest has run and shut down (an upper bound on "first instruction",
 *   seen by polling getdomaininfo), p50/p99; baseline: one no-op hypercall
 *   round trip, same run, so the ratio reads as "round trips' worth";
 * - the `xl create` command end to end (a new Node process each time, as a
 *   user runs it); baseline: a bare `node -e ''` spawn, same run;
 * - create + destroy cycles, 100 and 1,000, per-guest mean;
 * - growth: create time of guests 1-10 vs 91-100 vs 191-200 with all earlier
 *   ones still alive (paused).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDirLayout, type DomId } from '@xenbox/abi';
import { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import { createGuest, destroyGuest, loadDomainConfig, type CreateDeps } from '@xenbox/dom0';
import { median, percentile, result, type Benchmark } from './harness.js';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const XENBOX = join(REPO, 'packages/dom0/bin/xenbox.js');
const XL = join(REPO, 'packages/dom0/bin/xl.js');
const IMAGES = join(REPO, 'packages/guests/images');

function cfgFile(dir: string, name: string, kernel: string): string {
  const p = join(dir, `${name}.cfg`);
  writeFileSync(p, `name = "${name}"\nkernel = "${join(IMAGES, kernel)}"\nmemory = 8\non_poweroff = "preserve"\n`);
  return p;
}

async function waitShutdown(hv: HypervisorConnection, domid: DomId): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const info = await hv.call('domctl.getdomaininfo', { domid });
    if (info.shutdown !== null) return;
  }
  throw new Error(`d${domid} did not shut down within 10 s`);
}

function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export const benchmark: Benchmark = {
  name: 'create',
  description: 'guest creation: library and xl create, create+destroy cycles, growth with live guests',
  async run({ tmpDir, progress }) {
    const runDir = join(tmpDir, 'run');
    const stackCfg = join(tmpDir, 'stack.json');
    writeFileSync(stackCfg, JSON.stringify({ autostart: null }));
    execFileSync(process.execPath, [XENBOX, 'up', '--detach', '--run-dir', runDir, '--config', stackCfg], { stdio: 'ignore' });
    const token = readFileSync(runDirLayout(runDir).dom0Token, 'utf8').trim();
    const hv = await HypervisorConnection.connect({ runDir, domid: 0, token });
    const xs = await XenstoreClient.connectRunDir(runDir);
    const deps: CreateDeps = { hv, xs, runDir };
    const out: ReturnType<typeof result>[] = [];
    try {
      // Baseline: a no-op hypercall round trip.
      const rt: number[] = [];
      for (let i = 0; i < 500; i++) {
        const t0 = process.hrtime.bigint();
        await hv.call('xen_version', {});
        rt.push(msSince(t0));
      }
      const rtMs = median(rt);

      progress('library create of a guest that powers off at once, 40 times');
      const poweroff = loadDomainConfig(cfgFile(tmpDir, 'bench-off', 'pvh-poweroff.elf'));
      const createMs: number[] = [];
      const runMs: number[] = [];
      for (let i = 0; i < 40; i++) {
        const t0 = process.hrtime.bigint();
        const domid = await createGuest(deps, poweroff);
        createMs.push(msSince(t0));
        await waitShutdown(hv, domid);
        runMs.push(msSince(t0));
        await destroyGuest(deps, domid);
      }
      out.push(result('createGuest p50', median(createMs), 'ms', rtMs, null));
      out.push(result('createGuest p99', percentile(createMs, 99), 'ms', rtMs, null));
      out.push(result('create -> guest ran and powered off, p50', median(runMs), 'ms', rtMs, null));
      out.push(result('create -> guest ran and powered off, p99', percentile(runMs, 99), 'ms', rtMs, null));

      progress('xl create (a new process each time), 8 times');
      const nodeMs: number[] = [];
      const xlMs: number[] = [];
      const xlCfg = cfgFile(tmpDir, 'bench-xl', 'pvh-poweroff.elf');
      for (let i = 0; i < 8; i++) {
        let t0 = process.hrtime.bigint();
        spawnSync(process.execPath, ['-e', '']);
        nodeMs.push(msSince(t0));
        t0 = process.hrtime.bigint();
        const r = spawnSync(process.execPath, [XL, 'create', xlCfg], { env: { ...process.env, XENBOX_RUN_DIR: runDir } });
        if (r.status !== 0) throw new Error(`xl create failed: ${r.stderr.toString()}`);
        xlMs.push(msSince(t0));
        spawnSync(process.execPath, [XL, 'destroy', 'bench-xl'], { env: { ...process.env, XENBOX_RUN_DIR: runDir } });
      }
      out.push(result('xl create command p50', median(xlMs), 'ms', median(nodeMs), null));

      const spin = loadDomainConfig(cfgFile(tmpDir, 'bench-spin', 'pvh-spin.elf'));
      for (const n of [100, 1000]) {
        progress(`${n} create+destroy cycles`);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < n; i++) await destroyGuest(deps, await createGuest(deps, spin, { paused: true }));
        out.push(result(`create+destroy x${n}, per guest`, msSince(t0) / n, 'ms', rtMs, null));
      }

      progress('growth: 200 live (paused) guests');
      const live: DomId[] = [];
      const per: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = process.hrtime.bigint();
        live.push(await createGuest(deps, { ...spin, name: `bench-live-${i}` }, { paused: true }));
        per.push(msSince(t0));
      }
      for (const [lo, hi] of [[0, 10], [90, 100], [190, 200]] as const) {
        out.push(result(`create with ${lo}-${hi - 1} guests alive, median`, median(per.slice(lo, hi)), 'ms', median(per.slice(0, 10)), 'flat (ratio ~1)'));
      }
      for (const d of live) await destroyGuest(deps, d);
      return out;
    } finally {
      xs.close();
      await hv.close();
      execFileSync(process.execPath, [XENBOX, 'down', '--run-dir', runDir], { stdio: 'ignore' });
    }
  },
};
