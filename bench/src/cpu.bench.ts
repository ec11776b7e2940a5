/**
 * cpu: the RISC-V vCPU's speed on the C benchmark guest
 * (packages/guests/images/bench.elf: CRC32, matmul, linked-list walk), run
 * by `xenbox-cpu run --stats`, against QEMU TCG running the same ELF
 * (`qemu-system-riscv64 -M virt -bios none -kernel`) in the same run.
 *
 * Two views: whole-process MIPS (instructions retired / wall time, start-up
 * included), and kernel MIPS from the guest's own mtime ticks (10 MHz on
 * both), which leaves out process start-up and translation warm-up.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, result, type Benchmark, type BenchResult } from './harness.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const ELF = join(root, 'packages/guests/images/bench.elf');
const BIN = join(root, 'packages/hypervisor/bin/xenbox-cpu.js');
const RUNS = 3;
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

const hasQemu = (): boolean => spawnSync('sh', ['-c', 'command -v qemu-system-riscv64']).status === 0;

export const benchmark: Benchmark = {
  name: 'cpu',
  description: 'RV64 vCPU on the C benchmark guest vs QEMU TCG (same ELF, same run)',
  async run(ctx) {
    const ours: GuestReport[] = [];
    let instructions = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = runOnce(process.execPath, [BIN, 'run', '--stats', ELF]);
      instructions = Number(/instructions: (\d+)/.exec(r.stderr)?.[1] ?? 0);
      ctx.progress(`xenbox run ${i + 1}: ${r.wall.toFixed(3)} s, ${(instructions / r.wall / 1e6).toFixed(1)} MIPS`);
      ours.push(r);
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
    out.push(result('instructions retired', instructions, 'insns', null, null));
    return out;
  },
};
