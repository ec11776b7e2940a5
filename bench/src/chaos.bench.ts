/**
 * `pnpm bench chaos`: how fast the stack brings a killed driver domain back.
 * 30 kills each of blkback and netback (`xenbox chaos`, kills ~300 ms apart
 * with jitter), recovery = death noticed -> new domain ready, as the
 * supervisor measures it.  Baseline, same run: a bare Node child process
 * forked and reporting ready over IPC — the floor any restart pays here.
 *
 * Then what a guest sees (the table Xoar published for its restartable
 * driver VMs): a PV kernel's disktest (48 MiB written, then read and
 * verified) with blkback restarted every 10 s, 5 s and 1 s, as a fraction of
 * the same run with no restarts.
 *
 * Then isolation (issue #10): the same disktest while netback is held down
 * for the whole run (`xenbox kill netback --hold`), against the calm run;
 * and two guests with disks pinging each other while blkback is held down,
 * against the same pings with nothing down.
 */
import { execFileSync, fork } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChaos, percentile } from '@xenbox/dom0';
import type { RestartMetrics } from '@xenbox/abi';
import { median, result, type Benchmark } from './harness.js';

const XENBOX = resolve(fileURLToPath(import.meta.url), '../../../packages/dom0/bin/xenbox.js');
const KILLS = 30;
const XL = resolve(fileURLToPath(import.meta.url), '../../../packages/dom0/bin/xl.js');
const PVKERNEL = resolve(fileURLToPath(import.meta.url), '../../../packages/guests/images/pvkernel.elf');
const DISKTEST_MB = 48;

/** Run a disktest guest (while `during` runs) and return its write and read MB/s and whether it verified. */
async function disktest(runDir: string, tmpDir: string, tag: string, during: (doneBy: () => boolean) => Promise<unknown>): Promise<{ write: number; read: number; ok: boolean; why: string; ms: number; lost: number }> {
  const img = join(tmpDir, `${tag}.raw`);
  writeFileSync(img, Buffer.alloc((DISKTEST_MB + 8) << 20));
  const cfg = join(tmpDir, `${tag}.cfg`);
  writeFileSync(cfg, `name = "${tag}"\nkernel = "${PVKERNEL}"\nmemory = 32\ndisk = [ "${img},raw,xvda,w" ]\ncmdline = "disktest seed=5 mb=${DISKTEST_MB}"\n`);
  const env = { ...process.env, XENBOX_RUN_DIR: runDir };
  const t0 = Date.now();
  execFileSync(process.execPath, [XL, 'create', cfg], { env, stdio: 'ignore' });
  const log = join(runDir, 'console', `guest-${tag}.log`);
  const text = () => (existsSync(log) ? readFileSync(log, 'latin1') : '');
  // The figures, or (an I/O error stops disktest before it prints them) just its end.
  const figures = () => /disktest: wrote \d+ MiB at ([\d.]+) MB\/s, read at ([\d.]+) MB\/s, verify (OK|FAILED)/.exec(text());
  const finished = () => figures() !== null || /disktest: done \(-?\d+\)/.test(text());
  const chaos = during(finished);
  while (!finished()) {
    if (Date.now() - t0 > 600_000) throw new Error(`${tag}: disktest did not finish in 10 minutes`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const ms = Date.now() - t0;
  await chaos;
  const m = figures() ?? ['', '0', '0', 'FAILED'];
  const lost = /disktest: the backend went away (\d+) time/.exec(text());
  // What failed, in the guest's words: a sector that read back wrong, or an I/O error (disktest.c).
  const why = /disktest: (verify FAILED at sector \d+|(?:read|write) at sector \d+ failed \(-?\d+\)|cannot submit [^\n]*)/.exec(text())?.[1] ?? '';
  return { write: Number(m[1]), read: Number(m[2]), ok: m[3] === 'OK', why, ms, lost: lost ? Number(lost[1]) : 0 };
}

/** Two PV kernels with disks on xenbr0, b pinging a (`count` echoes 100 ms apart) while `during` runs; what ping printed. */
async function pingPair(runDir: string, tmpDir: string, tag: string, count: number, during: () => Promise<unknown>): Promise<{ received: number; avgMs: number; maxMs: number }> {
  const env = { ...process.env, XENBOX_RUN_DIR: runDir };
  const names = [`${tag}-a`, `${tag}-b`];
  const ips = ['10.0.9.1', '10.0.9.2'];
  const cmd = [`ip=${ips[0]} shell`, `ip=${ips[1]} ping ${ips[0]} count=${count} interval=100 wait=60 then=shell`];
  names.forEach((n, i) => {
    const img = join(tmpDir, `${n}.raw`);
    writeFileSync(img, Buffer.alloc(2 << 20));
    const cfg = join(tmpDir, `${n}.cfg`);
    writeFileSync(cfg, `name = "${n}"\nkernel = "${PVKERNEL}"\nmemory = 32\ndisk = [ "${img},raw,xvda,w" ]\nvif = [ "bridge=xenbr0,mac=00:16:3e:7c:00:0${i + 1}" ]\ncmdline = "${cmd[i]}"\n`);
    execFileSync(process.execPath, [XL, 'create', cfg], { env, stdio: 'ignore' });
  });
  const log = join(runDir, 'console', `guest-${names[1]}.log`);
  const text = () => (existsSync(log) ? readFileSync(log, 'latin1') : '');
  const t0 = Date.now();
  while (!/icmp_seq=3 /.test(text())) {
    if (Date.now() - t0 > 120_000) throw new Error(`${tag}: no ping answered in 2 minutes`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await during();
  let sum: RegExpExecArray | null = null;
  while (!(sum = new RegExp(`${count} packets transmitted, (\\d+) received`).exec(text()))) {
    if (Date.now() - t0 > 300_000) throw new Error(`${tag}: ping did not finish`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const rtt = /rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(text());
  for (const n of names) execFileSync(process.execPath, [XL, 'destroy', n], { env, stdio: 'ignore' });
  return { received: Number(sum[1]), avgMs: rtt ? Number(rtt[2]) : NaN, maxMs: rtt ? Number(rtt[3]) : NaN };
}

/** `xenbox kill NAME --hold MS`: down until `xenbox restart NAME` (or the hold ends). */
function holdDown(runDir: string, name: string, ms: number): void {
  execFileSync(process.execPath, [XENBOX, 'kill', name, '--hold', `${ms}ms`, '--run-dir', runDir], { stdio: 'ignore' });
}

function bringBack(runDir: string, name: string): void {
  execFileSync(process.execPath, [XENBOX, 'restart', name, '--run-dir', runDir], { stdio: 'ignore' });
}

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
        // KILLS kills, however long a loaded machine makes them take (up to 10 s each).
        const report = await runChaos(runDir, { target, everyMs: 300, forMs: KILLS * 10_000, kills: KILLS, jitter: 0.5, seed: 42 }, () => undefined);
        const r = report.recoveryMs.slice(0, KILLS);
        out.push(result(`${target}: recovery p50 (${r.length} kills)`, percentile(r, 50), 'ms', base, null));
        out.push(result(`${target}: recovery p99`, percentile(r, 99), 'ms', base, null));
        out.push(result(`${target}: recovered / killed`, report.recovered / Math.max(1, report.kills), 'fraction', null, '1.0'));
      }
      progress(`disktest (${DISKTEST_MB} MiB) without restarts, then with blkback restarted every 10 s, 5 s, 1 s`);
      const calm = await disktest(runDir, tmpDir, 'dt-none', async () => undefined);
      out.push(result('guest disktest write, no restarts', calm.write, 'MB/s', null, null));
      out.push(result('guest disktest read+verify, no restarts', calm.read, 'MB/s', null, null));
      const restarts: RestartMetrics[] = [];
      for (const everyS of [10, 5, 1]) {
        const r = await disktest(runDir, tmpDir, `dt-${everyS}s`, async (done) => {
          // Kill blkback every `everyS` seconds until the guest has finished: one kill per runChaos
          // (it sleeps everyS, kills, waits for the recovery; the half period after it ends the run,
          // which a deadline of exactly everyS would do before the kill when a sleep overshoots).
          while (!done()) restarts.push(...(await runChaos(runDir, { target: 'blkback', everyMs: everyS * 1000, forMs: everyS * 1500, jitter: 0, seed: 1 }, () => undefined)).restarts);
        });
        const what = `${r.lost} restarts seen by the guest${r.ok ? '' : `, VERIFY FAILED: ${r.why || 'no reason printed'}`}`;
        out.push(result(`guest disktest write, blkback restarted every ${everyS} s (${what})`, r.write, 'MB/s', calm.write, null));
        out.push(result(`guest disktest read+verify, restarted every ${everyS} s`, r.read, 'MB/s', calm.read, null));
      }
      // The supervisor's per-restart records of those runs (xenbox status --json restartMetrics).
      const io = restarts.flatMap((x) => (x.firstIoMs === null ? [] : [x.firstIoMs]));
      const ready = restarts.flatMap((x) => (x.readyMs === null ? [] : [x.readyMs]));
      if (io.length) {
        out.push(result(`blkback under a disktest: kill -> ready p50 (${ready.length} restarts)`, percentile(ready, 50), 'ms', base, null));
        out.push(result(`blkback under a disktest: kill -> first guest I/O answered p50 (${io.length} restarts)`, percentile(io, 50), 'ms', base, null));
        out.push(result('blkback under a disktest: kill -> first guest I/O answered p99', percentile(io, 99), 'ms', base, null));
        out.push(result('blkback under a disktest: requests re-issued per restart (mean)', restarts.reduce((n, x) => n + (x.reissued ?? 0), 0) / restarts.length, 'requests', null, null));
      }
      progress('isolation: disktest while netback is down, pings while blkback is down');
      holdDown(runDir, 'netback', 600_000);
      const noNet = await disktest(runDir, tmpDir, 'dt-nonet', async () => undefined);
      bringBack(runDir, 'netback');
      out.push(result(`guest disktest write while netback is down (${noNet.ok ? 'verified' : `VERIFY FAILED: ${noNet.why || 'no reason printed'}`})`, noNet.write, 'MB/s', calm.write, '>= 0.9x'));
      out.push(result('guest disktest read+verify while netback is down', noNet.read, 'MB/s', calm.read, '>= 0.9x'));
      const PINGS = 40;
      const calmPing = await pingPair(runDir, tmpDir, 'pp-calm', PINGS, async () => undefined);
      const noBlk = await pingPair(runDir, tmpDir, 'pp-noblk', PINGS, async () => {
        holdDown(runDir, 'blkback', 3000);
      });
      await new Promise((r) => setTimeout(r, 1000));
      out.push(result(`ping answered while blkback is down (${PINGS} sent, 100 ms apart; calm run: ${calmPing.received})`, noBlk.received / PINGS, 'fraction', calmPing.received / PINGS, '1.0'));
      out.push(result(`ping rtt avg while blkback is down (max ${noBlk.maxMs} ms; calm max ${calmPing.maxMs} ms)`, noBlk.avgMs, 'ms', calmPing.avgMs, null));
      return out;
    } finally {
      execFileSync(process.execPath, [XENBOX, 'down', '--run-dir', runDir], { stdio: 'ignore' });
    }
  },
};
