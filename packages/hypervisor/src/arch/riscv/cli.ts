/**
 * `xenbox-cpu run [--stats] [--htif] [--mem MB] FILE.elf`: run a bare-metal
 * RV64 ELF on one vCPU of a virt machine, started in M-mode at the ELF entry
 * with a0 = hartid and a1 = the device tree (as QEMU's `-bios none -kernel`).
 * The UART goes to stdout; the test device's poweroff ends the run with the
 * guest's exit code.  --htif adds the spike tohost/fromhost protocol used by
 * riscv-tests.
 *
 * `--bios` takes a raw firmware image loaded at the start of RAM instead (as
 * QEMU's `-bios u-boot.bin`); `--press-on TEXT` types a key once the console
 * has printed TEXT and `--until TEXT` stops there: together they time
 * firmware to its prompt (`--bios u-boot.bin --press-on 'autoboot' --until '=>'`).
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { XenError } from '@xenbox/abi';
import { createVirtMachine, VIRT, type VirtMachine } from './virt-machine.js';
import { loadElf, parseElf, type ElfImage } from './elf.js';
import { W } from './vcpu-state.js';

/** Instructions per run slice; between slices the runner flushes output and polls HTIF. */
const SLICE = 2_000_000;
const HTIF_SLICE = 20_000;

export interface RunOptions {
  memMB: number;
  htif: boolean;
  stats: boolean;
  /** Where console bytes go (default stdout). */
  write?: (bytes: Uint8Array) => void;
  /** Stop after this many instructions (tests); exit code 124 like timeout(1). */
  maxInstructions?: number;
  /** The image is raw firmware loaded at the start of RAM, not an ELF. */
  raw?: boolean;
  /** Type a key (a space) once the console output contains this text (stops autoboot countdowns). */
  pressOn?: string;
  /** Stop with exit code 0 once the console output contains this text. */
  until?: string;
  /** Interpreted runs of a block before it is translated (0: translate at once). */
  hotRuns?: number;
}

/** When a watched console text appeared: instructions retired and seconds since the start. */
export interface ConsoleMark {
  text: string;
  instructions: number;
  seconds: number;
}

export interface RunResult {
  exitCode: number;
  instructions: number;
  seconds: number;
  /** The --press-on / --until texts, in the order they appeared. */
  marks: ConsoleMark[];
}

/** Watches console bytes for the pressOn / until texts (ASCII; firmware prompts are). */
class ConsoleWatch {
  private tail = '';
  readonly marks: ConsoleMark[] = [];
  private readonly pending: { text: string; then: () => void }[] = [];
  constructor(private readonly now: () => ConsoleMark) {}

  on(text: string | undefined, then: () => void): void {
    if (text) this.pending.push({ text, then });
  }

  byte(b: number): void {
    if (this.pending.length === 0) return;
    this.tail = (this.tail + String.fromCharCode(b)).slice(-256);
    const hit = this.pending.findIndex((p) => this.tail.includes(p.text));
    if (hit < 0) return;
    const [p] = this.pending.splice(hit, 1);
    this.marks.push({ ...this.now(), text: p!.text });
    this.tail = '';
    p!.then();
  }
}

/** Run an ELF image to completion; resolves with the guest's exit code. */
export async function runElf(bytes: Uint8Array, opts: RunOptions): Promise<RunResult> {
  const image = opts.raw ? undefined : parseElf(bytes);
  const out: number[] = [];
  const write = opts.write ?? ((b: Uint8Array) => process.stdout.write(b));
  const flush = (): void => {
    if (out.length) write(Uint8Array.from(out.splice(0)));
  };
  let instructions = 0;
  let t0 = performance.now();
  const watch = new ConsoleWatch(() => ({ text: '', instructions: instructions + hart.instret(0) - instretAtSlice, seconds: (performance.now() - t0) / 1000 }));
  const m = createVirtMachine({ memBytes: opts.memMB << 20, hotRuns: opts.hotRuns, console: (b) => { out.push(b); watch.byte(b); } });
  const hart = m.harts[0]!;
  let instretAtSlice = 0;
  let untilSeen = false;
  watch.on(opts.pressOn, () => m.uart.receive([0x20]));
  watch.on(opts.until, () => { untilSeen = true; hart.requestShutdown('poweroff', 0); });
  const boot = (): void => {
    if (image) loadElf(m.ram, image);
    else m.ram.write(VIRT.DRAM, bytes);
    hart.reset(image ? image.entry : BigInt(VIRT.DRAM), 3);
    hart.state.setReg(10, 0);
    hart.state.setReg(11, m.dtbAddr);
  };
  boot();
  const htif = opts.htif && image ? htifWatch(m, image) : undefined;
  const slice = htif ? HTIF_SLICE : SLICE;
  t0 = performance.now();
  let exitCode: number | undefined;
  let slices = 0;
  while (exitCode === undefined) {
    instretAtSlice = hart.instret(0);
    const exit = hart.run(slice);
    instructions += exit.executed;
    if (htif) exitCode = htif.poll(out);
    if (untilSeen) exitCode = 0;
    if (exitCode !== undefined) break;
    switch (exit.reason) {
      case 'shutdown': {
        const req = m.test.request ?? exit.shutdown;
        m.test.request = undefined;
        if (req?.kind === 'reboot') { flush(); boot(); break; }
        exitCode = req?.code ?? 0;
        break;
      }
      case 'wfi': {
        flush();
        await sleepUntilInterrupt(m);
        break;
      }
      case 'fault': {
        flush();
        const f = exit.fault!;
        process.stderr.write(`xenbox-cpu: guest fault: cause ${f.cause} tval 0x${f.tval.toString(16)} pc 0x${f.pc.toString(16)}\n`);
        exitCode = 3;
        break;
      }
      case 'mmio': case 'hypercall': case 'stopped': {
        flush();
        process.stderr.write(`xenbox-cpu: unexpected exit '${exit.reason}' at pc 0x${hart.state.pc.toString(16)}\n`);
        exitCode = 3;
        break;
      }
    }
    if (opts.maxInstructions !== undefined && instructions >= opts.maxInstructions && exitCode === undefined) exitCode = 124;
    if (++slices % 16 === 0) {
      flush();
      await new Promise((r) => setImmediate(r)); // let stdin and signals in
    }
  }
  flush();
  const seconds = (performance.now() - t0) / 1000;
  if (opts.stats) {
    process.stderr.write(`instructions: ${instructions}\nseconds: ${seconds.toFixed(3)}\nMIPS: ${(instructions / seconds / 1e6).toFixed(1)}\n`);
    const st = hart.stats;
    process.stderr.write(`blocks: ${st.blocksInterpreted} decoded, ${st.blocksTranslated} translated; interpreted instructions: ${hart.interpretedInstructions}\n`);
    for (const k of watch.marks) process.stderr.write(`mark: ${JSON.stringify(k.text)} instructions ${k.instructions} seconds ${k.seconds.toFixed(3)}\n`);
  }
  return { exitCode, instructions, seconds, marks: watch.marks };
}

/** WFI: sleep until the next timer deadline (or a short while), staying responsive to input. */
async function sleepUntilInterrupt(m: VirtMachine): Promise<void> {
  const hart = m.harts[0]!;
  const deadline = hart.nextTimerDeadline();
  const ms = deadline === Infinity ? 50 : Math.max(0, Math.min(50, (deadline - m.clint.now()) / 10_000));
  if (ms > 0 && !hart.interruptPending()) await new Promise((r) => setTimeout(r, ms));
  Atomics.store(hart.state.i32, W.KICK, 1);
}

/** The spike HTIF protocol over the ELF's tohost/fromhost symbols (riscv-tests' env/p). */
function htifWatch(m: VirtMachine, image: ElfImage): { poll(out: number[]): number | undefined } {
  const tohost = image.symbols.get('tohost');
  const fromhost = image.symbols.get('fromhost');
  if (tohost === undefined) throw new XenError('ENOENT', '--htif: the ELF has no tohost symbol');
  const toOff = m.ram.offsetOf(Number(tohost), 8);
  const fromOff = fromhost === undefined ? -1 : m.ram.offsetOf(Number(fromhost), 8);
  if (toOff < 0) throw new XenError('EINVAL', '--htif: tohost is outside guest RAM');
  return {
    poll(out) {
      const v = BigInt.asUintN(64, Atomics.load(m.ram.i64, toOff >> 3));
      if (v === 0n) return undefined;
      Atomics.store(m.ram.i64, toOff >> 3, 0n);
      const device = Number(v >> 56n), command = Number((v >> 48n) & 0xffn);
      if (device === 0 && command === 0 && (v & 1n) === 1n) return Number(v >> 1n); // exit: value>>1
      if (device === 1 && command === 1) out.push(Number(v & 0xffn)); // console putchar
      if (fromOff >= 0) Atomics.store(m.ram.i64, fromOff >> 3, BigInt.asIntN(64, (BigInt(device) << 56n) | (BigInt(command) << 48n) | 1n));
      return undefined;
    },
  };
}

function parseMem(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 2047) throw new InvalidArgumentError('expected a size in MiB between 1 and 2047');
  return n;
}

function parseRuns(v: string): number {
  const n = v === 'inf' ? Infinity : Number(v);
  if (!(n === Infinity || (Number.isInteger(n) && n >= 0))) throw new InvalidArgumentError('expected a count >= 0 or inf');
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('xenbox-cpu').description('Run RISC-V RV64IMAC guests on the xenbox vCPU');
  let code = 0;
  program
    .command('run')
    .description('run a bare-metal RV64 ELF on one vCPU of a virt machine (UART to stdout)')
    .argument('<file>', 'ELF executable')
    .option('--stats', 'print instructions retired, seconds and MIPS to stderr')
    .option('--htif', 'honour the tohost/fromhost symbols (spike HTIF, riscv-tests)')
    .option('--mem <MB>', 'guest RAM in MiB', parseMem, 128)
    .option('--bios', 'FILE is a raw firmware image, loaded at the start of RAM (like qemu -bios)')
    .option('--press-on <text>', 'type a space once the console has printed <text>')
    .option('--until <text>', 'stop (exit 0) once the console has printed <text>')
    .option('--hot-runs <n>', 'interpret a block this many times before translating it (0: translate at once)', parseRuns)
    .action(async (file: string, o: { stats?: boolean; htif?: boolean; mem: number; bios?: boolean; pressOn?: string; until?: string; hotRuns?: number }) => {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(file);
      } catch (e) {
        process.stderr.write(`xenbox-cpu: cannot read ${file}: ${(e as Error).message}\n`);
        code = 2;
        return;
      }
      try {
        code = (await runElf(bytes, { memMB: o.mem, htif: !!o.htif, stats: !!o.stats, raw: !!o.bios, pressOn: o.pressOn, until: o.until, hotRuns: o.hotRuns })).exitCode;
      } catch (e) {
        if (!(e instanceof XenError)) throw e;
        process.stderr.write(`xenbox-cpu: ${file}: ${e.message}\n`);
        code = 2;
      }
    });
  await program.parseAsync(argv);
  return code;
}
