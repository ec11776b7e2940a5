/**
 * Tiny RISC-V guests for the scheduler tests and benchmark, assembled with
 * test/riscv/asm.ts, and helpers to run them under a VcpuScheduler.
 * All are PVH guests (S-mode, SBI served by the hypervisor).
 */
import { SBI_EID, SBI_HSM_FID } from '@xenbox/abi';
import { a0, a1, a2, a3, a4, a5, a6, a7, addi, andi, assemble, beq, csrrci, csrrs, ecall, jal, li, t0, wfi, type Program } from '../riscv/asm.js';
import type { DomainSchedConfig, VcpuScheduler } from '../../dist/sched/index.js';

export const RAM_BASE = 0x8000_0000;
const CSR_SIE = 0x104, CSR_SIP = 0x144;
/** Interrupt number of the supervisor software interrupt (what the tests inject). */
export const IRQ_SSI = 1;

/** A CPU-bound loop: a3 counts iterations. */
export const busyLoop: Program = [addi(a3, a3, 1), jal(0, -4)];

/** Waits for interrupts forever with none enabled: blocked in WFI, never runnable. */
export const idleLoop: Program = [wfi(), jal(0, -4)];

/**
 * Enables SSIP in sie, then loops: wfi; a5++; if sip.SSIP was set, clear it and a3++.
 * a3 counts interrupts seen, a5 every return from WFI (the ISA lets WFI return early).
 */
export const wakeCounter: Program = [
  li(t0, 2), csrrs(0, CSR_SIE, t0),
  wfi(), addi(a5, a5, 1), csrrci(a4, CSR_SIP, 2), andi(a4, a4, 2), beq(a4, 0, -16), addi(a3, a3, 1), jal(0, -24),
];

/** vCPU 0 starts vCPU 1 at `at` with SBI HSM hart_start, then spins; put busyLoop at `at`. */
export const startSecondary = (at: number): Program => [
  li(a7, SBI_EID.HSM), li(a6, SBI_HSM_FID.HART_START), li(a0, 1), li(a1, at), li(a2, 0), ecall(),
  addi(a3, a3, 1), jal(0, -4),
];

export function guestRam(code: Program, extra: [number, Program][] = [], bytes = 256 << 10): SharedArrayBuffer {
  const ram = new SharedArrayBuffer(bytes);
  new Uint8Array(ram).set(assemble(code), 0);
  for (const [at, p] of extra) new Uint8Array(ram).set(assemble(p), at - RAM_BASE);
  return ram;
}

export function addGuest(s: VcpuScheduler, domid: number, code: Program, cfg: Partial<DomainSchedConfig> = {}): void {
  s.addDomain(domid, { vcpus: 1, ram: guestRam(code), entry: RAM_BASE, dtb: 0, kind: 'pvh', ...cfg });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Accounted guest time (ns) per domain over `ms` of wall time, and the wall time measured. */
export async function measure(s: VcpuScheduler, domids: number[], ms: number): Promise<{ ns: Map<number, number>; wallNs: number }> {
  const before = new Map(s.domainCpuInfo().map((d) => [d.domid, d.cpuTimeNs]));
  const t0 = performance.now();
  await sleep(ms);
  const wallNs = (performance.now() - t0) * 1e6;
  const after = new Map(s.domainCpuInfo().map((d) => [d.domid, d.cpuTimeNs]));
  return { ns: new Map(domids.map((d) => [d, after.get(d)! - before.get(d)!])), wallNs };
}

/** Percent of the summed accounted time each domain got. */
export function shares(ns: Map<number, number>): Map<number, number> {
  const total = [...ns.values()].reduce((a, b) => a + b, 0);
  return new Map([...ns].map(([d, n]) => [d, (100 * n) / total]));
}

export const noHooks = { onHypercall: (): number => -38 };
