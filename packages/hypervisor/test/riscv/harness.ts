/**
 * Test harness: a hart on 4 MiB of RAM at 0x80000000 with a CLINT, running
 * assembled machine code from 0x80000000 in M-mode until it executes `wfi`
 * (with no interrupt enabled, wfi leaves the run loop) or runs out of budget.
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
  const hart = new Hart({ state, bus, clint, sbi: opts.sbi });
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

/** Run a program and return the machine (after it stopped). */
export function exec(prog: Program, opts: MachineOptions = {}): TestMachine {
  const m = machine(prog, opts);
  m.run();
  return m;
}

export const u64 = (v: bigint | number): bigint => BigInt.asUintN(64, BigInt(v));
