/**
 * A pCPU: the piscina worker that runs vCPU slices (DESIGN §6).
 *
 * It keeps one Hart per vCPU it has run, built once over the domain's
 * SharedArrayBuffers (guest RAM, vCPU state, CLINT, PLIC): guest memory is
 * shared, never copied.  The hart's TLB and translated blocks are this
 * thread's caches; they are dropped when the scheduler says the vCPU ran
 * elsewhere since (FLAG.FRESH), as Xen flushes on migration.
 * Protocol: slice-protocol.ts.
 */
import { ConsoleInputRing } from './console-input.js';
import { ConsoleWriter } from './console-order.js';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { SBI_EID, SBI_HSM_FID } from '@xenbox/abi';
import { Bus, GuestRam, MMIO, MMIO_READ_EXIT, type MmioDevice } from '../arch/riscv/memory.js';
import { Hart, SbiOutcome, type SbiHandler } from '../arch/riscv/hart.js';
import { Sbi } from '../arch/riscv/sbi.js';
import { Clint, CLINT_SIZE } from '../arch/riscv/clint.js';
import { Plic, PLIC_SIZE } from '../arch/riscv/plic.js';
import { VIRT } from '../arch/riscv/virt-machine.js';
import { IoreqWindow } from '../common/ioreq-page.js';
import { VcpuState, W, markExitPending } from '../arch/riscv/vcpu-state.js';
import {
  CTL, CTL_SLICE_NS, CTL_WORDS, EXTENSION_NS, FLAG, MBOX, nowMs,
  type DomainDescriptor, type FromWorker, type SliceReport, type ToWorker,
  exitNeedsMainThread,
} from './slice-protocol.js';

interface Assignment {
  domid: number;
  vcpu: number;
  seq: number;
  flags: number;
  sliceNs: number;
}

interface WorkerDomain {
  desc: DomainDescriptor;
  bus: Bus;
  clint: Clint;
  states: VcpuState[];
  harts: (Hart | undefined)[];
  sbi: SbiHandler | undefined;
  console: ConsoleWriter;
}

export interface PcpuTask {
  pcpu: number;
  ctl: SharedArrayBuffer;
  port: MessagePort;
}

/** HVM device MMIO the hypervisor does not emulate: every access leaves the vCPU as an ioreq (DESIGN §10). */
const IOREQ_DEVICE: MmioDevice = {
  read: () => MMIO_READ_EXIT,
  write: () => MMIO.EXIT,
};

function buildDomain(desc: DomainDescriptor, post: (m: FromWorker) => void): WorkerDomain {
  const ram = new GuestRam(desc.ram, desc.ramBase);
  const bus = new Bus(ram);
  const clint = new Clint(desc.clint);
  const plic = new Plic(desc.plic);
  bus.map('clint', VIRT.CLINT, CLINT_SIZE, clint);
  bus.map('plic', VIRT.PLIC, PLIC_SIZE, plic);
  const states = desc.vcpus.map((sab) => new VcpuState(sab));
  for (const s of states) plic.attach(s);
  const console = new ConsoleWriter(desc.consoleSeq);
  let sbi: SbiHandler | undefined;
  if (desc.kind === 'hvm') {
    // With an ioreq page, mirrored reads and posted writes are served here without leaving the vCPU.
    const page = desc.ioreqPage;
    const dev = (base: number): MmioDevice => (page ? new IoreqWindow(page, base) : IOREQ_DEVICE);
    bus.map('test', VIRT.TEST, 0x1000, dev(VIRT.TEST));
    bus.map('uart0', VIRT.UART0, 0x100, dev(VIRT.UART0));
    bus.map('virtio', VIRT.VIRTIO, VIRT.VIRTIO_STRIDE * VIRT.VIRTIO_COUNT, dev(VIRT.VIRTIO));
  } else {
    const input = new ConsoleInputRing(desc.consoleIn);
    const inner = new Sbi({ harts: states, consoleWrite: (bytes) => console.write(bytes), consoleRead: () => input.pop() });
    sbi = {
      // SBI HSM hart_start marks the target start-pending; tell the scheduler at once so it makes it runnable.
      ecall(hart: Hart): SbiOutcome {
        const eid = Number(BigInt.asUintN(32, hart.state.reg(17)));
        const fid = Number(BigInt.asUintN(32, hart.state.reg(16)));
        const out = inner.ecall(hart);
        if (eid === SBI_EID.HSM && fid === SBI_HSM_FID.HART_START && hart.state.reg(10) === 0n) post({ kind: 'hsm', domid: desc.domid });
        return out;
      },
    };
  }
  return { desc, bus, clint, states, harts: [], sbi, console };
}

function hartOf(d: WorkerDomain, vcpu: number): Hart | undefined {
  const state = d.states[vcpu];
  if (!state) return undefined;
  let h = d.harts[vcpu];
  if (!h) {
    // The CLINT view shares the domain's mtime epoch and comparators, so MTIP and mtime agree on every pCPU.
    h = new Hart({ state, bus: d.bus, clint: d.clint, sbi: d.sbi });
    d.harts[vcpu] = h;
  }
  return h;
}

/** Take the posted assignment, if any (never blocks). */
function tryTake(c: Int32Array, f: Float64Array): Assignment | undefined {
  for (;;) {
    const m = Atomics.compareExchange(c, CTL.MBOX, MBOX.POSTED, MBOX.BUSY);
    if (m === MBOX.BUSY) continue; // the main thread is rewriting it: a few instructions
    if (m !== MBOX.POSTED) return undefined;
    const a = { domid: c[CTL.DOMID]!, vcpu: c[CTL.VCPU]!, seq: c[CTL.SEQ]!, flags: c[CTL.FLAGS]!, sliceNs: f[CTL_SLICE_NS]! };
    Atomics.store(c, CTL.MBOX, MBOX.EMPTY);
    return a;
  }
}

/** Sleep until the main thread posts an assignment; undefined means quit. */
function waitForAssignment(c: Int32Array, f: Float64Array): Assignment | undefined {
  for (;;) {
    const a = tryTake(c, f);
    if (a) return a;
    if (Atomics.load(c, CTL.MBOX) === MBOX.QUIT) return undefined;
    Atomics.wait(c, CTL.MBOX, MBOX.EMPTY, 1000);
  }
}

const needsMainThread = exitNeedsMainThread;

export default function pcpuMain({ pcpu, ctl, port }: PcpuTask): string {
  const c = new Int32Array(ctl, 0, CTL_WORDS);
  const f = new Float64Array(ctl, CTL_WORDS * 4, 1);
  const domains = new Map<number, WorkerDomain>();
  let descGen = -1;
  const post = (m: FromWorker): void => port.postMessage(m);
  const drainPort = (): void => {
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      const msg = m.message as ToWorker;
      if (msg.kind === 'domain') domains.set(msg.desc.domid, buildDomain(msg.desc, post));
      else domains.delete(msg.domid);
    }
  };
  post({ kind: 'ready' });
  let a = waitForAssignment(c, f);
  let taken = a?.seq ?? 0;
  /** The current assignment came from the mailbox (not an extension of the last one). */
  let fromMailbox = true;
  while (a && Atomics.load(c, CTL.MBOX) !== MBOX.QUIT) {
    const gen = Atomics.load(c, CTL.DESC_GEN);
    if (gen !== descGen) {
      descGen = gen;
      drainPort();
    }
    const d = domains.get(a.domid);
    const hart = d && hartOf(d, a.vcpu);
    const report: SliceReport = {
      kind: 'slice', pcpu, domid: a.domid, vcpu: a.vcpu, reason: 'gone', ranNs: 0, executed: 0,
      startedAt: nowMs(), endedAt: 0, timerNs: Infinity, next: 'wait', tookSeq: taken,
    };
    taken = 0;
    if (hart && d) {
      // A preempt request aimed at an earlier stint of this vCPU must not cut the new one short.
      if (fromMailbox) Atomics.store(hart.state.i32, W.PREEMPT, 0);
      if (a.flags & FLAG.FRESH) {
        hart.flushTlb();
        hart.flushCode();
      }
    }
    if (hart && d && Atomics.load(hart.state.i32, W.EXIT_PENDING) !== 0) {
      // Posted before the main thread saw this vCPU's last exit (that report is
      // ahead of this one on our port): hand the assignment back unrun, as a
      // declined one; the main thread reschedules the vCPU once it has handled
      // the exit.
      report.reason = 'preempted';
    } else if (hart && d) {
      const t0 = performance.now();
      const exit = hart.run(Number.MAX_SAFE_INTEGER, a.sliceNs);
      if (needsMainThread(exit.reason)) markExitPending(hart.state);
      const t1 = performance.now();
      report.startedAt = performance.timeOrigin + t0;
      report.endedAt = performance.timeOrigin + t1;
      report.ranNs = (t1 - t0) * 1e6;
      report.reason = exit.reason;
      report.executed = exit.executed;
      if (exit.mmio) report.mmio = exit.mmio;
      if (exit.shutdown) report.shutdown = exit.shutdown;
      if (exit.fault) report.fault = exit.fault;
      if (exit.reason === 'wfi') report.timerNs = (hart.nextTimerDeadline() - hart.mtime()) * 100;
      const out = d.console.take();
      if (out) report.console = out;
    }
    const next = tryTake(c, f);
    if (next && !(next.domid === a.domid && next.vcpu === a.vcpu && needsMainThread(report.reason))) {
      report.next = 'took';
      report.tookSeq = next.seq;
      post(report);
      a = next;
      fromMailbox = true;
      continue;
    }
    if (next) report.tookSeq = next.seq; // declined: that vCPU must see the main thread first
    if (report.reason === 'budget' && a.flags & FLAG.MAY_EXTEND && !next) {
      report.next = 'extend';
      post(report);
      a = { ...a, flags: a.flags & ~FLAG.FRESH, sliceNs: EXTENSION_NS };
      fromMailbox = false;
      continue;
    }
    report.next = 'wait';
    post(report);
    a = waitForAssignment(c, f);
    taken = a?.seq ?? 0;
    fromMailbox = true;
  }
  port.close();
  return `pcpu ${pcpu} stopped`;
}
