/**
 * `pnpm bench pvkernel`: the RISC-V PV kernel (docs/pvkernel.md) as a user
 * meets it.
 *
 * - boot: `xl create` -> the shell's prompt in the console log (device tree,
 *   memory, events, grants, xenstore and console ring over the HVM params,
 *   banner, data/ written), median of 5; baseline: `xl create` -> the
 *   greeting of pvh-hello, the smallest guest, same run;
 * - cpu: the `cpu` workload's iterations/s on the vCPU (median batch after
 *   warm-up); baseline: the same loop (pvkernel/cpu-work.h) compiled for the
 *   host with gcc -O2, same run: the ratio is the emulation's speed;
 * - shell round trip: a line typed through `xl console` (xenconsoled -> the
 *   console ring's `in` -> event -> the shell -> `out` -> xenconsoled) until
 *   its echo and the next prompt come back, p50 of 30.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDirLayout } from '@xenbox/abi';
import { median, percentile, result, type Benchmark, type BenchResult } from './harness.js';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const XENBOX = join(REPO, 'packages/dom0/bin/xenbox.js');
const XL = join(REPO, 'packages/dom0/bin/xl.js');
const IMAGES = join(REPO, 'packages/guests/images');
const BOOTS = 5;
const ECHOES = 30;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

export const benchmark: Benchmark = {
  name: 'pvkernel',
  description: 'the RISC-V PV kernel: boot to its shell, cpu loop vs native, shell round trip through xl console',
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
    const cfg = (name: string, kernel: string, cmdline = '') => {
      const p = join(tmpDir, `${name}.cfg`);
      writeFileSync(p, `name = "${name}"\ntype = "pvh"\nkernel = "${join(IMAGES, kernel)}"\nmemory = 32\ncmdline = "${cmdline}"\non_poweroff = "destroy"\n`);
      return p;
    };
    /** xl create -> `marker` in the console log, ms; the guest is destroyed afterwards. */
    const bootTime = async (name: string, kernel: string, cmdline: string, marker: string) => {
      const file = cfg(name, kernel, cmdline);
      const t0 = performance.now();
      const child = spawn(process.execPath, [XL, 'create', file], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      await until(`${name}: ${marker}`, () => log(name).includes(marker)).catch((e: Error) => {
        throw new Error(`${e.message}; xl create said: ${stderr}; console: ${log(name)}`);
      });
      const ms = performance.now() - t0;
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.on('exit', r)));
      xl('destroy', name);
      return ms;
    };
    const out: BenchResult[] = [];
    try {
      progress(`boot to the prompt x${BOOTS}, and pvh-hello to its greeting x${BOOTS}`);
      const boots: number[] = [];
      const hellos: number[] = [];
      for (let i = 0; i < BOOTS; i++) {
        boots.push(await bootTime(`pvk-boot${i}`, 'pvkernel.elf', 'shell', 'pvkernel> '));
        hellos.push(await bootTime(`hello${i}`, 'pvh-hello.elf', '', 'Hello from a xenbox PVH guest'));
      }
      if (!log('pvk-boot0').includes('console: switched to the Xen console ring')) throw new Error(`pvk-boot0 did not reach the console ring:\n${log('pvk-boot0')}`);
      out.push(result('xl create -> shell prompt (p50)', median(boots), 'ms', median(hellos), null));

      progress('cpu workload for 8 s, and the same loop natively');
      xl('create', cfg('pvk-cpu', 'pvkernel.elf', 'cpu seconds=8 then=poweroff'));
      await until('the cpu workload', () => log('pvk-cpu').includes('cpu: done'), 60_000);
      const rates = [...log('pvk-cpu').matchAll(/cpu: batch (\d+): (\d+) iterations\/s/g)].filter((m) => Number(m[1]) > 3).map((m) => Number(m[2]));
      if (!rates.length) throw new Error(`no cpu batches after warm-up:\n${log('pvk-cpu')}`);
      out.push(result('cpu loop on the vCPU (median batch)', median(rates), 'iterations/s', nativeRate(tmpDir), null));

      progress(`shell round trip x${ECHOES}`);
      xl('create', cfg('pvk-shell', 'pvkernel.elf', 'shell'));
      await until('the prompt', () => log('pvk-shell').includes('pvkernel> '));
      const con = spawn(process.execPath, [XL, 'console', 'pvk-shell'], { env, stdio: 'pipe' });
      let text = '';
      con.stdout.on('data', (b: Buffer) => (text += b.toString('latin1')));
      // xl console is a new Node process: what is typed before it has attached waits for it. Warm up first.
      con.stdin.write('echo ready\r');
      await until('xl console to attach', () => text.includes('\r\nready\r\npvkernel> '), 30_000);
      const trips: number[] = [];
      for (let i = 0; i < ECHOES; i++) {
        const from = text.length;
        const t0 = performance.now();
        con.stdin.write(`echo r${i}\r`);
        await until(`echo ${i}`, () => text.slice(from).includes(`\r\nr${i}\r\npvkernel> `), 10_000);
        trips.push(performance.now() - t0);
      }
      con.kill();
      out.push(result('shell line through xl console, round trip (p50)', median(trips), 'ms', null, null));
      out.push(result('shell line through xl console, round trip (p99)', percentile(trips, 99), 'ms', null, null));
      xl('destroy', 'pvk-shell');
    } finally {
      execFileSync(process.execPath, [XENBOX, 'down', '--run-dir', runDir], { stdio: 'ignore' });
    }
    return out;
  },
};

/** The cpu workload's loop (cpu-work.h) built for the host: its median iterations/s over ~1 s of batches. */
function nativeRate(tmpDir: string): number {
  const src = join(tmpDir, 'cpu-native.c');
  const bin = join(tmpDir, 'cpu-native');
  writeFileSync(src, `#include <stdio.h>
#include <time.h>
#include "cpu-work.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(void) {
  uint64_t x = CPU_WORK_SEED;
  for (int b = 0; b < 200; b++) {
    double t0 = now();
    uint64_t sum = cpu_work(x, CPU_WORK_BATCH);
    double dt = now() - t0;
    x = sum | 1;
    printf("%.0f %016llx\\n", CPU_WORK_BATCH / dt, (unsigned long long)sum);
  }
  return 0;
}
`);
  execFileSync('gcc', ['-O2', '-I', join(REPO, 'packages/guests/pvkernel'), '-o', bin, src]);
  const rates = execFileSync(bin, { encoding: 'utf8' }).trim().split('\n').map((l) => Number(l.split(' ')[0]));
  return median(rates.slice(20));
}
