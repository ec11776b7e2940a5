/**
 * `pnpm bench pvkernel-devices`: the PV kernel's drivers
 * (docs/pvkernel-drivers.md) against the real driver domains.
 *
 * - disktest: a guest writes 8 MiB of the seeded pattern through blkfront ->
 *   blkback -> a raw image, flushes, reads it back and verifies (its own
 *   MB/s, wall time of each phase); baseline: this process writing the same
 *   bytes to a file in 64 KiB writes + fdatasync and reading them back, same
 *   run.  The ratio is what the whole PV path (an emulated RISC-V vCPU
 *   generating and checking the pattern included) costs against plain file
 *   I/O.
 * - ping: ICMP echo between two guests on xenbr0 (netfront -> netback's
 *   bridge -> netfront), 20 echoes 200 ms apart, the guest's own
 *   avg and max RTT.  No baseline.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDirLayout } from '@xenbox/abi';
import { result, type Benchmark, type BenchResult } from './harness.js';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const XENBOX = join(REPO, 'packages/dom0/bin/xenbox.js');
const XL = join(REPO, 'packages/dom0/bin/xl.js');
const KERNEL = join(REPO, 'packages/guests/images/pvkernel.elf');
const MIB = 8;
const CHUNK = 64 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => T | undefined | null, ms: number, explain: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${explain()}`);
    await sleep(20);
  }
}

/** The disktest pattern of pvkernel/pattern.h (see test/helpers/disk-pattern.ts). */
function pattern(seed: bigint, sectors: number): Buffer {
  const MASK = (1n << 64n) - 1n;
  const out = Buffer.alloc(sectors * 512);
  for (let s = 0; s < sectors; s++) {
    let x = (seed * 0x9e3779b97f4a7c15n + BigInt(s + 1) * 0xbf58476d1ce4e5b9n) & MASK;
    if (x === 0n) x = 1n;
    for (let i = 0; i < 64; i++) {
      x ^= (x << 13n) & MASK;
      x ^= x >> 7n;
      x ^= (x << 17n) & MASK;
      out.writeBigUInt64LE(x, s * 512 + i * 8);
    }
  }
  return out;
}

/** Write `data` to a fresh file in 64 KiB writes + fdatasync, read it back; MB/s (10^6 B/s) of each. */
function hostFileRates(file: string, data: Buffer): { write: number; read: number } {
  writeFileSync(file, Buffer.alloc(0));
  let fd = openSync(file, 'r+');
  const t0 = performance.now();
  for (let off = 0; off < data.length; off += CHUNK) writeSync(fd, data, off, CHUNK, off);
  fdatasyncSync(fd);
  const t1 = performance.now();
  closeSync(fd);
  fd = openSync(file, 'r');
  const back = Buffer.alloc(data.length);
  const t2 = performance.now();
  for (let off = 0; off < data.length; off += CHUNK) readSync(fd, back, off, CHUNK, off);
  const t3 = performance.now();
  closeSync(fd);
  if (!back.equals(data)) throw new Error('host baseline: read back differs');
  return { write: data.length / 1e3 / (t1 - t0), read: data.length / 1e3 / (t3 - t2) };
}

export const benchmark: Benchmark = {
  name: 'pvkernel-devices',
  description: "the PV kernel's blkfront (disktest MB/s vs host file I/O) and netfront (guest-to-guest ping RTT)",
  async run({ tmpDir, progress }) {
    const runDir = join(tmpDir, 'run');
    const stackCfg = join(tmpDir, 'stack.json');
    writeFileSync(stackCfg, JSON.stringify({ autostart: null }));
    execFileSync(process.execPath, [XENBOX, 'up', '--detach', '--run-dir', runDir, '--config', stackCfg], { stdio: 'ignore' });
    const env = { ...process.env, XENBOX_RUN_DIR: runDir };
    const xl = (...args: string[]) => spawnSync(process.execPath, [XL, ...args], { env, encoding: 'utf8' });
    const log = (name: string) => {
      const f = runDirLayout(runDir).consoleLog(name);
      return existsSync(f) ? readFileSync(f, 'latin1') : '';
    };
    const create = (name: string, lines: string) => {
      const p = join(tmpDir, `${name}.cfg`);
      writeFileSync(p, `name = "${name}"\ntype = "pvh"\nkernel = "${KERNEL}"\nmemory = 32\non_poweroff = "destroy"\n${lines}\n`);
      const r = xl('create', p);
      if (r.status !== 0) throw new Error(`xl create ${name}: ${r.stderr}`);
    };
    const out: BenchResult[] = [];
    try {
      progress(`disktest ${MIB} MiB on a raw image, and the same bytes through host file I/O`);
      const img = join(tmpDir, 'disk.raw');
      execFileSync('truncate', ['-s', `${2 * MIB}M`, img]);
      create('bd-disk', `disk = [ "${img},raw,xvda,w" ]\ncmdline = "disktest seed=3 mb=${MIB}"`);
      const m = await until('disktest', () => /disktest: wrote \d+ MiB at ([\d.]+) MB\/s, read at ([\d.]+) MB\/s, verify (\w+)/.exec(log('bd-disk')), 180_000, () => log('bd-disk'));
      if (m[3] !== 'OK') throw new Error(`disktest did not verify:\n${log('bd-disk')}`);
      const kicks = (log('bd-disk').match(/notifying again/g) ?? []).length;
      const host = hostFileRates(join(tmpDir, 'host.raw'), pattern(3n, (MIB * 1024 * 1024) / 512));
      out.push(result(`disktest write ${MIB} MiB + flush (guest${kicks ? ', re-notified after a stall' : ''})`, Number(m[1]), 'MB/s', host.write, null));
      out.push(result(`disktest read + verify ${MIB} MiB (guest)`, Number(m[2]), 'MB/s', host.read, null));

      progress('ping between two guests on xenbr0, 20 echoes');
      create('bd-echo', 'vif = [ "bridge=xenbr0,mac=00:16:3e:b0:00:01" ]\ncmdline = "ip=10.0.0.1 udp-echo"');
      await until('udp-echo', () => log('bd-echo').includes('udp-echo: listening'), 60_000, () => log('bd-echo'));
      create('bd-ping', 'vif = [ "bridge=xenbr0,mac=00:16:3e:b0:00:02" ]\ncmdline = "ip=10.0.0.2 ping 10.0.0.1 count=20 interval=200 wait=30"');
      const rtt = await until('ping', () => /rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(log('bd-ping')), 90_000, () => log('bd-ping'));
      const recv = /20 packets transmitted, (\d+) received/.exec(log('bd-ping'))?.[1];
      out.push(result(`guest-to-guest ping RTT, avg of 20 (${recv}/20 answered)`, Number(rtt[2]), 'ms', null, null));
      out.push(result('guest-to-guest ping RTT, max of 20', Number(rtt[3]), 'ms', null, null));
      xl('destroy', 'bd-echo');
    } finally {
      execFileSync(process.execPath, [XENBOX, 'down', '--run-dir', runDir], { stdio: 'ignore' });
    }
    return out;
  },
};
