/**
 * Test harness: a hart on 4 MiB of RAM at 0x80000000 with a CLINT, running
 * assembled machine code from 0x80000000 in M-mode until it executes `wfi`
 * (with no interrupt enabled, wfi leaves the run loop) or runs out of budget.
 *
 * `exec` is differential: it runs the program three times, with the hart's
 * default (interpreter, translating blocks after HOT_RUNS runs), with the
 * translator only, and translating every block after its first run, and
 * fails unless all three end in the same state (registers, CSRs, RAM, MMIO
 * writes, exit).  So every test written
 * with `exec` checks the interpreter against the translator too.
 */
import { Bus, GuestRam, MMIO } from '../../src/arch/riscv/memory.js';
import { Hart, type RunExit, type SbiHandler } from '../../src/arch/riscv/hart.js';
import { VcpuState } from '../../src/arch/riscv/vcpu-state.js';
import { Clint } from '../../src/arch/riscv/clint.js';
import { assemble, wfi, type Program } from './asm.js';

export const RAM_BASE = 0x8000_0000;
export const DATA = 0x8010_0000; // a scratch data page, away from the code
export const MMIO_BASE = 0x1000_0000;

export interface TestMachine {
  hart: Hart;
  state: VcpuState;
  ram: GuestRam;
  bus: Bus;
  clint: Clint;
  /** Run until wfi/exit; returns the exit. */
  run(budget?: number): RunExit;
  x(reg: number): bigint;
  /** x(reg) as a signed value. */
  sx(reg: number): bigint;
  csr(name: keyof typeof CSR_NAMES): bigint;
  /** Writes seen by the test MMIO device at MMIO_BASE: [offset, size, value]. */
  mmioWrites: [number, number, number][];
}

const CSR_NAMES = { mcause: 0x342, mepc: 0x341, mtval: 0x343, scause: 0x142, sepc: 0x141, stval: 0x143, mstatus: 0x300 };

export interface MachineOptions {
  at?: number;
  priv?: number;
  sbi?: SbiHandler;
  ramBytes?: number;
  /** Extra code/data blobs: [address, bytes]. */
  load?: [number, Uint8Array][];
  /** HartOptions.hotRuns: interpreted runs before a block is translated (0 = translator only, Infinity = interpreter only). */
  hotRuns?: number;
  /** mtime reads this value instead of the host clock (so runs can be compared). */
  frozenTime?: number;
}

export function machine(prog: Program, opts: MachineOptions = {}): TestMachine {
  const ram = GuestRam.allocate(opts.ramBytes ?? 4 << 20);
  const bus = new Bus(ram);
  const clint = new Clint();
  bus.map('clint', 0x0200_0000, 0x10000, clint);
  const mmioWrites: [number, number, number][] = [];
  bus.map('test-mmio', MMIO_BASE, 0x1000, {
    read: (offset) => 0x1234_0000 + offset,
    write: (offset, size, value) => {
      mmioWrites.push([offset, size, value]);
      return MMIO.OK;
    },
  });
  const state = VcpuState.create(0);
  if (opts.frozenTime !== undefined) {
    const t = opts.frozenTime;
    clint.now = () => t;
  }
  const hart = new Hart({ state, bus, clint, sbi: opts.sbi, hotRuns: opts.hotRuns });
  const at = opts.at ?? RAM_BASE;
  ram.write(at, assemble([...prog, wfi()]));
  for (const [addr, bytes] of opts.load ?? []) ram.write(addr, bytes);
  hart.reset(BigInt(at), opts.priv ?? 3);
  return {
    hart, state, ram, bus, clint, mmioWrites,
    run: (budget = 100_000) => hart.run(budget),
    x: (r) => state.reg(r),
    sx: (r) => BigInt.asIntN(64, state.reg(r)),
    csr: (name) => {
      const slot = { mcause: 9, mepc: 8, mtval: 10, scause: 15, sepc: 14, stval: 16, mstatus: 0 }[name];
      return BigInt.asUintN(64, state.csrBig(slot));
    },
  };
}

/**
 * Run a program and return the machine (after it stopped); the same program
 * also runs translator-only and promoted after one run, and must end identically.
 */
export function exec(prog: Program, opts: MachineOptions = {}): TestMachine {
  const frozenTime = opts.frozenTime ?? new Clint().now() + 1_000_000;
  const run = (hotRuns: number | undefined): [TestMachine, RunExit] => {
    const m = machine(prog, { ...opts, frozenTime, hotRuns: hotRuns ?? opts.hotRuns });
    return [m, m.run()];
  };
  const [m, exit] = run(undefined);
  for (const hotRuns of [0, 1]) {
    const [other, otherExit] = run(hotRuns);
    const diff = differences(m, exit, other, otherExit);
    if (diff) throw new Error(`hotRuns=${hotRuns} differs from the default run: ${diff}`);
  }
  return m;
}

/** The first difference between two machines' end states, or undefined. */
export function differences(a: TestMachine, ea: RunExit, b: TestMachine, eb: RunExit): string | undefined {
  const ja = JSON.stringify({ ...ea, mmio: String(ea.mmio?.value), fault: ea.fault && String(ea.fault.pc) });
  const jb = JSON.stringify({ ...eb, mmio: String(eb.mmio?.value), fault: eb.fault && String(eb.fault.pc) });
  if (ea.reason === 'budget' && eb.reason === 'budget') {
    // A translated self-loop may overshoot the budget by up to LOOP_LIMIT instructions: compare nothing else.
    return undefined;
  }
  if (ja !== jb) return `exit ${ja} vs ${jb}`;
  const sa = new Int32Array(a.state.sab), sb = new Int32Array(b.state.sab);
  for (let i = 0; i < sa.length; i++) if (sa[i] !== sb[i]) return `vCPU state word ${i}: 0x${(sa[i]! >>> 0).toString(16)} vs 0x${(sb[i]! >>> 0).toString(16)}`;
  const ra = a.ram.u8, rb = b.ram.u8;
  if (!Buffer.from(ra.buffer, ra.byteOffset, ra.length).equals(Buffer.from(rb.buffer, rb.byteOffset, rb.length))) for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return `RAM byte 0x${(RAM_BASE + i).toString(16)}: ${ra[i]} vs ${rb[i]}`;
  if (JSON.stringify(a.mmioWrites) !== JSON.stringify(b.mmioWrites)) return `MMIO writes ${JSON.stringify(a.mmioWrites)} vs ${JSON.stringify(b.mmioWrites)}`;
  return undefined;
}

export const u64 = (v: bigint | number): bigint => BigInt.asUintN(64, BigInt(v));
