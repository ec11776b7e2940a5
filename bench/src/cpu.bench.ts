/**
 * cpu: the RISC-V vCPU's speed on the C benchmark guest
 * (packages/guests/images/bench.elf: CRC32, matmul, linked-list walk), run
 * by `xenbox-cpu run --stats`, against QEMU TCG running the same ELF
 * (`qemu-system-riscv64 -M virt -bios none -kernel`) in the same run.
 *
 * Two views: whole-process MIPS (instructions retired / wall time, start-up
 * included), and kernel MIPS from the guest's own mtime ticks (10 MHz on
 * both), which leaves out process start-up and translation warm-up.
 *
 * Cold-block interpreter (arch/riscv/interpreter.ts): bench.elf's kernels and
 * U-Boot to its prompt also run with `--hot-runs 0` (every block translated
 * at its first run, as before the interpreter), interleaved with the default
 * runs, so the ratio shows what interpreting cold blocks gains or costs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, result, type Benchmark, type BenchResult } from './harness.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const ELF = join(root, 'packages/guests/images/bench.elf');
const BIN = join(root, 'packages/hypervisor/bin/xenbox-cpu.js');
const RUNS = 3;
/** U-Boot runs per variant (medians of at least 5: this box is shared and noisy). */
const UBOOT_RUNS = 5;
const KERNELS = ['crc32', 'matmul', 'list'];

interface GuestReport {
  /** Wall seconds of the whole process. */
  wall: number;
  /** Per kernel: [ticks (10 MHz), instructions as counted by the guest's minstret]. */
  kernels: Map<string, [number, number]>;
}

function parseGuest(stdout: string): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const m of stdout.matchAll(/^(\w+) 0x[0-9a-f]+ ticks (\d+) insns (\d+)$/gm)) out.set(m[1]!, [Number(m[2]), Number(m[3])]);
  return out;
}

function runOnce(cmd: string, args: string[]): GuestReport & { stderr: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}: ${r.stderr}`);
  return { wall, kernels: parseGuest(r.stdout), stderr: r.stderr };
}

const UBOOT = '/usr/lib/u-boot/qemu-riscv64/u-boot.bin';
/** Printed by U-Boot's autoboot countdown: we type a key there, on both sides, then wait for the prompt. */
const AUTOBOOT = 'autoboot';
const PROMPT = '=>';

interface PromptRun {
  /** Seconds from process spawn to the prompt (Node or QEMU start-up included). */
  wall: number;
  /** Seconds from reset to the prompt as the runner measured them (xenbox only). */
  seconds?: number;
  instructions?: number;
}

/** Unmodified U-Boot (M-mode, `-bios`) to its `=>` prompt, autoboot stopped by a key press. */
function ubootOurs(extra: string[] = []): PromptRun {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, 'run', '--bios', '--stats', ...extra, '--press-on', AUTOBOOT, '--until', PROMPT, UBOOT], { encoding: 'utf8', timeout: 120_000 });
  const wall = (performance.now() - t0) / 1000;
  const m = /mark: "=>" instructions (\d+) seconds ([\d.]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`xenbox-cpu u-boot exited ${r.status}: ${r.stderr}`);
  return { wall, instructions: Number(m[1]), seconds: Number(m[2]) };
}

/** QEMU TCG to the same prompt: a key on stdin at the countdown, killed when the prompt appears. */
function ubootQemu(): Promise<PromptRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const q = spawn('qemu-system-riscv64', ['-M', 'virt', '-m', '128M', '-nographic', '-bios', UBOOT], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    let pressed = false;
    const timer = setTimeout(() => { q.kill('SIGKILL'); reject(new Error('qemu: no U-Boot prompt in 60 s')); }, 60_000);
    q.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (!pressed && out.includes(AUTOBOOT)) { pressed = true; q.stdin.write(' '); }
      if (pressed && out.slice(out.indexOf(AUTOBOOT)).includes(PROMPT)) {
        const wall = (performance.now() - t0) / 1000;
        clearTimeout(timer);
        q.kill('SIGKILL');
        resolve({ wall });
      }
    });
    q.on('error', reject);
  });
}

const hasQemu = (): boolean => spawnSync('sh', ['-c', 'command -v qemu-system-riscv64']).status === 0;

export const benchmark: Benchmark = {
  name: 'cpu',
  description: 'RV64 vCPU on the C benchmark guest vs QEMU TCG (same ELF, same run)',
  async run(ctx) {
    const ours: GuestReport[] = [];
    const translated: GuestReport[] = [];
    let instructions = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = runOnce(process.execPath, [BIN, 'run', '--stats', ELF]);
      instructions = Number(/instructions: (\d+)/.exec(r.stderr)?.[1] ?? 0);
      ctx.progress(`xenbox run ${i + 1}: ${r.wall.toFixed(3)} s, ${(instructions / r.wall / 1e6).toFixed(1)} MIPS`);
      ours.push(r);
      const t = runOnce(process.execPath, [BIN, 'run', '--stats', '--hot-runs', '0', ELF]);
      ctx.progress(`xenbox --hot-runs 0 run ${i + 1}: ${t.wall.toFixed(3)} s`);
      translated.push(t);
    }
    const qemu: GuestReport[] = [];
    if (hasQemu()) {
      for (let i = 0; i < RUNS; i++) {
        const r = runOnce('qemu-system-riscv64', ['-M', 'virt', '-m', '128M', '-bios', 'none', '-kernel', ELF, '-nographic']);
        ctx.progress(`qemu run ${i + 1}: ${r.wall.toFixed(3)} s`);
        qemu.push(r);
      }
    } else ctx.progress('qemu-system-riscv64 not installed: no baseline');

    const wallMips = (runs: GuestReport[]) => instructions / median(runs.map((r) => r.wall)) / 1e6;
    // Kernel MIPS: our exact per-kernel instruction counts over each side's guest-measured time.
    const kernelMips = (runs: GuestReport[], names: string[]) => {
      const insns = names.reduce((s, k) => s + (ours[0]!.kernels.get(k)?.[1] ?? 0), 0);
      const secs = median(runs.map((r) => names.reduce((s, k) => s + (r.kernels.get(k)?.[0] ?? 0), 0))) / 1e7;
      return insns / secs / 1e6;
    };
    const base = (v: number): number | null => (qemu.length ? v : null);
    const out: BenchResult[] = [
      result('whole run (MIPS, incl. start-up)', wallMips(ours), 'MIPS', base(qemu.length ? wallMips(qemu) : 0), '>= 200 MIPS, >= 0.25x QEMU'),
      result('kernels (MIPS, guest mtime)', kernelMips(ours, KERNELS), 'MIPS', base(qemu.length ? kernelMips(qemu, KERNELS) : 0), '>= 0.25x QEMU'),
    ];
    for (const k of KERNELS) out.push(result(`${k} (MIPS)`, kernelMips(ours, [k]), 'MIPS', base(qemu.length ? kernelMips(qemu, [k]) : 0), null));
    out.push(result('kernels vs --hot-runs 0 (MIPS)', kernelMips(ours, KERNELS), 'MIPS', kernelMips(translated, KERNELS), 'no regression (~1x)'));
    out.push(result('instructions retired', instructions, 'insns', null, null));
    if (existsSync(UBOOT)) out.push(...(await ubootResults(ctx)));
    else ctx.progress(`${UBOOT} not installed (apt u-boot-qemu): no U-Boot figures`);
    return out;
  },
};

/** U-Boot to its prompt: our in-process time and whole-process wall time, QEMU's process wall time. */
async function ubootResults(ctx: { progress(msg: string): void }): Promise<BenchResult[]> {
  const ours: PromptRun[] = [];
  const translated: PromptRun[] = [];
  for (let i = 0; i < UBOOT_RUNS; i++) {
    const r = ubootOurs();
    ctx.progress(`u-boot run ${i + 1}: ${r.seconds!.toFixed(3)} s to the prompt (${r.wall.toFixed(3)} s process), ${(r.instructions! / 1e6).toFixed(2)} M insns`);
    ours.push(r);
    const t = ubootOurs(['--hot-runs', '0']);
    ctx.progress(`u-boot --hot-runs 0 run ${i + 1}: ${t.seconds!.toFixed(3)} s to the prompt (${t.wall.toFixed(3)} s process)`);
    translated.push(t);
  }
  const qemu: PromptRun[] = [];
  if (hasQemu()) {
    for (let i = 0; i < UBOOT_RUNS; i++) {
      const r = await ubootQemu();
      ctx.progress(`qemu u-boot run ${i + 1}: ${r.wall.toFixed(3)} s`);
      qemu.push(r);
    }
  }
  const qWall = qemu.length ? median(qemu.map((r) => r.wall)) : null;
  const insns = median(ours.map((r) => r.instructions!));
  const secs = median(ours.map((r) => r.seconds!));
  return [
    result('u-boot to prompt (s, in-process)', secs, 's', qWall, '< 0.5 s'),
    result('u-boot to prompt (s, whole process)', median(ours.map((r) => r.wall)), 's', qWall, null),
    result('u-boot to prompt vs --hot-runs 0 (s, in-process)', secs, 's', median(translated.map((r) => r.seconds!)), '< 1x'),
    result('u-boot to prompt (MIPS)', insns / secs / 1e6, 'MIPS', null, null),
    result('u-boot instructions to prompt', insns, 'insns', null, null),
  ];
}
