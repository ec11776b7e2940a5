/**
 * `pnpm bench chaos`: how fast the stack brings a killed driver domain back.
 * 30 kills each of blkback and netback (`xenbox chaos`, kills ~300 ms apart
 * with jitter), recovery = death noticed -> new domain ready, as the
 * supervisor measures it.  Baseline, same run: a bare Node child process
 * forked and reporting ready over IPC — the floor any restart pays here.
 *
 * Guest-visible figures (disk throughput under repeated blkback restarts)
 * need blkfront/blkback, which are not built yet.
 */
import { execFileSync, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChaos, percentile } from '@xenbox/dom0';
import { median, result, type Benchmark } from './harness.js';

const XENBOX = resolve(fileURLToPath(import.meta.url), '../../../packages/dom0/bin/xenbox.js');
const KILLS = 30;

/** Fork a child that says ready at once; ms from fork to the message. */
async function bareSpawnMs(script: string): Promise<number> {
  const t0 = performance.now();
  const child = fork(script, [], { stdio: 'ignore' });
  await new Promise((res, rej) => {
    child.once('message', res);
    child.once('exit', (code) => rej(new Error(`baseline child exited ${code} before saying ready`)));
  });
  const ms = performance.now() - t0;
  child.kill();
  return ms;
}

export const benchmark: Benchmark = {
  name: 'chaos',
  description: 'driver-domain recovery after a kill vs a bare process spawn',
  async run({ tmpDir, progress }) {
    const runDir = join(tmpDir, 'run');
    const cfg = join(tmpDir, 'stack.json');
    writeFileSync(cfg, JSON.stringify({ autostart: null }));
    execFileSync(process.execPath, [XENBOX, 'up', '--detach', '--run-dir', runDir, '--config', cfg], { stdio: 'ignore' });
    try {
      const out: ReturnType<typeof result>[] = [];
      const baseline: number[] = [];
      const script = join(tmpDir, 'ready.cjs');
      writeFileSync(script, "process.send('ready');\n");
      for (let i = 0; i < 15; i++) baseline.push(await bareSpawnMs(script));
      const base = median(baseline);
      for (const target of ['blkback', 'netback']) {
        progress(`${KILLS} kills of ${target}`);
        const report = await runChaos(runDir, { target, everyMs: 300, forMs: KILLS * 900, jitter: 0.5, seed: 42 }, () => undefined);
        const r = report.recoveryMs.slice(0, KILLS);
        out.push(result(`${target}: recovery p50 (${r.length} kills)`, percentile(r, 50), 'ms', base, null));
        out.push(result(`${target}: recovery p99`, percentile(r, 99), 'ms', base, null));
        out.push(result(`${target}: recovered / killed`, report.recovered / Math.max(1, report.kills), 'fraction', null, '1.0'));
      }
      return out;
    } finally {
      execFileSync(process.execPath, [XENBOX, 'down', '--run-dir', runDir], { stdio: 'ignore' });
    }
  },
};
