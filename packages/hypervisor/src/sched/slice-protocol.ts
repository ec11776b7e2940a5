/**
 * The protocol between the scheduler (main thread) and a pCPU worker.
 *
 * A piscina task costs ~150-190 us per round trip on these machines (measured:
 * 1 ms slices as tasks lost 15 % of the pCPU), so each pCPU runs one
 * long-lived task and slices are handed over through a mailbox in a
 * SharedArrayBuffer (Atomics.wait on the worker side).  The worker reports
 * each finished slice on a MessagePort and, when the slice simply ran out and
 * the scheduler has not answered yet, keeps running the same vCPU
 * ("extension") until the scheduler posts its decision and preempts it.  So a
 * CPU-bound pCPU never waits for the main thread, which is what keeps the
 * overhead at 1 ms slices low.  Domain descriptors (SharedArrayBuffers of
 * RAM and vCPU state) go over the port once per pCPU: nothing is copied per slice.
 */
import type { ConsoleChunk } from './console-order.js';
import type { RunExit } from '../arch/riscv/hart.js';

/** Int32 word indexes of a pCPU's control block. */
export const CTL = {
  /** Mailbox state: see MBOX. */
  MBOX: 0,
  DOMID: 1,
  VCPU: 2,
  SEQ: 3,
  FLAGS: 4,
  /** Bumped by the main thread after it posted domain descriptors on the port. */
  DESC_GEN: 5,
} as const;
export const CTL_WORDS = 8;
/** Float64 index (in a view starting at byte CTL_WORDS*4) of the slice length in ns. */
export const CTL_SLICE_NS = 0;
export const CTL_BYTES = CTL_WORDS * 4 + 8;

export const MBOX = {
  EMPTY: 0,
  POSTED: 1,
  /** One side is reading or writing the assignment: the other spins briefly. */
  BUSY: 2,
  QUIT: 3,
} as const;

export const FLAG = {
  /** The worker may keep running this vCPU past its slice until told otherwise. */
  MAY_EXTEND: 1,
  /** The vCPU ran on another pCPU since this one last ran it: drop the thread's TLB and translations. */
  FRESH: 2,
} as const;

/** Longest an extension runs before the worker reports again (the scheduler normally preempts far sooner). */
export const EXTENSION_NS = 10_000_000;

export interface DomainDescriptor {
  domid: number;
  kind: 'pvh' | 'hvm';
  ram: SharedArrayBuffer;
  ramBase: number;
  vcpus: SharedArrayBuffer[];
  clint: SharedArrayBuffer;
  plic: SharedArrayBuffer;
  /** Console input bytes (ConsoleInputRing). */
  consoleIn: SharedArrayBuffer;
  /** Sequence counter of console output bytes (console-order.ts). */
  consoleSeq: SharedArrayBuffer;
  /** HVM: the ioreq page (register mirror + buffered writes, common/ioreq-page.ts). */
  ioreqPage?: SharedArrayBuffer;
}

/** Main -> worker port messages. */
export type ToWorker = { kind: 'domain'; desc: DomainDescriptor } | { kind: 'forget'; domid: number };

/** What happened after the slice: the worker took the posted assignment, extends the same vCPU, or waits. */
export type NextStep = 'took' | 'extend' | 'wait';

/** Worker -> main: one finished run of a vCPU. */
export interface SliceReport {
  kind: 'slice';
  pcpu: number;
  domid: number;
  vcpu: number;
  reason: RunExit['reason'] | 'gone';
  /** Measured time inside Hart.run, ns. */
  ranNs: number;
  executed: number;
  /** performance.timeOrigin + performance.now() when the run started, ms. */
  startedAt: number;
  endedAt: number;
  /** For 'wfi': ns from the end of the run until the next timer interrupt (Infinity if none). */
  timerNs: number;
  mmio?: RunExit['mmio'];
  shutdown?: RunExit['shutdown'];
  fault?: RunExit['fault'];
  console?: ConsoleChunk[];
  next: NextStep;
  /** The sequence number of the mailbox assignment the worker consumed (taken or declined), 0 if none. */
  tookSeq: number;
}

/** Worker -> main: a PVH vCPU called SBI HSM hart_start (the target is start-pending). */
export interface HsmReport {
  kind: 'hsm';
  domid: number;
}

/** Worker -> main: the pCPU thread is up and waiting for work. */
export interface ReadyReport {
  kind: 'ready';
}

export type FromWorker = SliceReport | HsmReport | ReadyReport;

/** Absolute monotonic-ish time in ms, comparable across threads. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** Exits after which the vCPU needs the main thread before it may run again (the worker marks them EXIT_PENDING). */
export const exitNeedsMainThread = (reason: string): boolean => reason !== 'budget' && reason !== 'preempted';
