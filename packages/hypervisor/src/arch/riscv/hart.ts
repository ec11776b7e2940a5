/**
 * One RISC-V hart (vCPU): the run loop, the soft TLB, the slow paths that
 * translated blocks call (memory, atomics, CSRs, system instructions) and
 * trap/interrupt entry.
 *
 * The hart object is a per-thread *view*: architectural state is in the
 * VcpuState SharedArrayBuffer; the TLB and translated blocks here are caches
 * that a thread rebuilds when it picks the vCPU up.
 */
import { div, divu, HI, mul, mulh, mulhsu, mulhu, rem, remu } from './alu64.js';
import { CAUSE, IRQ_PRIORITY, MSTATUS, PRIV } from './trap.js';
import { csrAccessAllowed, readCsr, writeCsr, type CsrHost } from './csr.js';
import { Access, satpMode, walkSv39 } from './mmu.js';
import { compile, TLB_SIZE, translate, type BlockHelpers } from './translator.js';
import { decodeBlock, HOT_RUNS, Interpreter } from './interpreter.js';
import { completeHypercallState, completeMmioState, CSR_SLOT, F, hypercallOf, resetVcpuState, W, type VcpuState } from './vcpu-state.js';
import { MMIO, MMIO_READ_EXIT, type Bus, type GuestRam } from './memory.js';
import type { Clint } from './clint.js';
import { fullFence } from '../../common/fence.js';

/** Why `run` returned. */
export type ExitReason =
  | 'budget' // the instruction or time budget is used up
  | 'wfi' // the guest waits for an interrupt (none pending and enabled in mie)
  | 'hypercall' // a Xen hypercall (SBI extension XEN_SBI_EID): serve it, then completeHypercall()
  | 'mmio' // an MMIO access a device callback did not complete: forward it, then completeMmio()
  | 'fault' // the guest cannot continue (a trap with nowhere to go)
  | 'shutdown' // the guest powered off or asked for a reset (see RunExit.shutdown)
  | 'stopped' // SBI HSM hart_stop: this vCPU is off until another hart starts it
  | 'preempted'; // the scheduler's preempt flag was seen

export interface MmioRequest {
  write: boolean;
  /** Guest-physical address. */
  addr: number;
  /** Bytes: 1, 2, 4 or 8. */
  size: number;
  /** The value written (writes only). */
  value: bigint;
}

export interface RunExit {
  reason: ExitReason;
  /** Instructions retired during this call. */
  executed: number;
  mmio?: MmioRequest;
  /** For 'shutdown': poweroff (with an exit code) or reboot. */
  shutdown?: { kind: 'poweroff' | 'reboot'; code: number };
  /** For 'fault': the trap that could not be delivered. */
  fault?: { cause: number; tval: bigint; pc: bigint };
}

/** What the hart asks of an SBI implementation (PVH guests: the hypervisor is the SBI firmware). */
export interface SbiHandler {
  /** Serve the ecall in the hart's registers; returns what the run loop should do next. */
  ecall(hart: Hart): SbiOutcome;
}
export const enum SbiOutcome {
  CONTINUE = 0,
  HYPERCALL = 1,
  SHUTDOWN = 2,
  STOPPED = 3,
  WFI = 4,
}

export interface HartOptions {
  state: VcpuState;
  bus: Bus;
  clint?: Clint;
  /** Serve S-mode ecalls as SBI (PVH guests, no M-mode firmware). */
  sbi?: SbiHandler;
  /**
   * Runs of a block in the interpreter before it is translated (default
   * HOT_RUNS); 0 translates every block at once, Infinity never translates.
   */
  hotRuns?: number;
}

const enum Exit {
  NONE = 0,
  WFI,
  HYPERCALL,
  MMIO,
  FAULT,
  SHUTDOWN,
  STOPPED,
  PREEMPTED,
}
const EXIT_NAMES: ExitReason[] = ['budget', 'wfi', 'hypercall', 'mmio', 'fault', 'shutdown', 'stopped', 'preempted'];

const enum Pending {
  TRAP = 1,
  MMIO = 2,
}

/** HOT_RUNS, or XENBOX_HOT_RUNS from the environment (a count, or "inf"): for measuring whole stacks with other thresholds. */
const DEFAULT_HOT_RUNS = ((): number => {
  const v = typeof process === 'undefined' ? undefined : process.env.XENBOX_HOT_RUNS;
  const n = v === 'inf' ? Infinity : Number(v);
  return v !== undefined && v !== '' && n >= 0 ? n : HOT_RUNS;
})();

/** Instructions between polls of the preempt flag, timers and injected interrupts. */
export const POLL_INTERVAL = 4096;
const CACHE_BITS = 14;
const CACHE_SIZE = 1 << CACHE_BITS;
const TWO32 = 4294967296;
const INVALID_TAG = -1;
/** SBI HSM states (SBI_HSM_STATE in @xenbox/abi). */
const HSM_STARTED = 0, HSM_STOPPED = 1, HSM_START_PENDING = 2;

export class Hart implements BlockHelpers, CsrHost {
  readonly state: VcpuState;
  readonly ram: GuestRam;
  readonly bus: Bus;
  readonly clint: Clint | undefined;
  sbi: SbiHandler | undefined;
  private readonly R: Int32Array;

  // Soft TLB (TinyEMU style): per access type, tag = page-aligned VA (lo, hi), value = RAM offset of the page.
  private readonly RL = new Int32Array(TLB_SIZE);
  private readonly RH = new Int32Array(TLB_SIZE);
  private readonly RO = new Int32Array(TLB_SIZE);
  private readonly WL = new Int32Array(TLB_SIZE);
  private readonly WH = new Int32Array(TLB_SIZE);
  private readonly WO = new Int32Array(TLB_SIZE);
  private readonly XL = new Int32Array(TLB_SIZE);
  private readonly XH = new Int32Array(TLB_SIZE);
  private readonly XO = new Int32Array(TLB_SIZE);

  // Translated blocks, direct-mapped by RAM offset of the PC, tagged with the virtual PC too.
  private readonly cacheOff = new Int32Array(CACHE_SIZE).fill(INVALID_TAG);
  private readonly cacheVl = new Int32Array(CACHE_SIZE);
  private readonly cacheVh = new Int32Array(CACHE_SIZE);
  private readonly cacheFn: (() => number)[] = new Array<() => number>(CACHE_SIZE).fill(() => 0);
  /** 1 for RAM pages that hold translated code: their stores take the slow path and invalidate. */
  private readonly codePages: Uint8Array;
  private readonly env: unknown[];
  private readonly interp: Interpreter;
  private readonly hotRuns: number;

  /**
   * F[0] != 0: the last slow-path call left a trap or MMIO exit pending.
   * F[1] != 0: something needs the run loop's attention (exit, interrupt
   * state, code invalidation): a self-looping block returns at its back edge.
   */
  private readonly F = new Int32Array(2);
  private pendKind = 0;
  private pendCause = 0;
  private pendTvalLo = 0;
  private pendTvalHi = 0;

  private exitCode: Exit = Exit.NONE;
  private exitInfo: Partial<RunExit> = {};
  /** Instructions retired in the current run call before the running block. */
  private executed = 0;
  private pollAt = 0;
  /** Set when the test device (or SRST) asked to stop after the current instruction. */
  private shutdownRequest: RunExit['shutdown'] | undefined;

  readonly stats = { blocksTranslated: 0, blocksInterpreted: 0, tlbMisses: 0, codeInvalidations: 0 };

  constructor(opts: HartOptions) {
    this.state = opts.state;
    this.bus = opts.bus;
    this.ram = opts.bus.ram;
    this.clint = opts.clint;
    this.sbi = opts.sbi;
    this.R = this.state.i32;
    this.codePages = new Uint8Array(Math.ceil(this.ram.size / 4096));
    this.env = [
      this.R, this.ram.i8, this.ram.u8, this.ram.i16, this.ram.u16, this.ram.i32,
      this.RL, this.RH, this.RO, this.WL, this.WH, this.WO, this.F, HI, this,
      mul, mulh, mulhsu, mulhu, div, divu, rem, remu,
    ];
    const ram = this.ram;
    this.interp = new Interpreter({
      R: this.R, S8: ram.i8, U8: ram.u8, S16: ram.i16, U16: ram.u16, S32: ram.i32,
      RL: this.RL, RH: this.RH, RO: this.RO, WL: this.WL, WH: this.WH, WO: this.WO, F: this.F, X: this,
    });
    this.hotRuns = opts.hotRuns ?? DEFAULT_HOT_RUNS;
    this.flushTlb();
    this.clint?.attach(this.state);
  }

  /** Instructions the interpreter retired (the rest ran translated). */
  get interpretedInstructions(): number {
    return this.interp.retired;
  }

  // ---------------------------------------------------------------- reset

  /** Reset to `pc` in privilege `priv` (M for firmware, S for PVH kernels), as after power-on. */
  reset(pc: bigint, priv: number): void {
    resetVcpuState(this.state, pc, priv, this.sbi !== undefined);
    this.flushTlb();
    this.flushCode();
  }

  // ---------------------------------------------------------------- run loop

  /**
   * Run until the budget is used up (`maxInstructions`, and `maxNs` of wall
   * time if given) or the guest needs something from the caller.
   */
  run(maxInstructions: number, maxNs = Infinity): RunExit {
    const R = this.R;
    const XL = this.XL, XH = this.XH, XO = this.XO;
    const cacheOff = this.cacheOff, cacheVl = this.cacheVl, cacheVh = this.cacheVh, cacheFn = this.cacheFn;
    const deadline = maxNs === Infinity ? Infinity : performance.now() + maxNs / 1e6;
    this.exitCode = Exit.NONE;
    this.exitInfo = {};
    this.executed = 0;
    this.pollAt = 0;
    this.shutdownRequest = undefined;
    const hsm = Atomics.load(this.state.i32, W.HSM);
    if (hsm === HSM_STOPPED) return { reason: 'stopped', executed: 0 };
    if (hsm === HSM_START_PENDING) {
      Atomics.store(this.state.i32, W.HSM, HSM_STARTED);
      this.flushTlb();
    }
    for (;;) {
      if (this.executed >= this.pollAt) {
        if (this.poll()) break;
        this.takeInterrupt();
        if (this.exitCode !== Exit.NONE) break;
        if (deadline !== Infinity && performance.now() >= deadline) break;
        this.pollAt = this.executed + POLL_INTERVAL;
      }
      if (this.executed >= maxInstructions) break;
      const pcl = R[W.PC]!, pch = R[W.PC + 1]!;
      const t = (pcl >>> 12) & (TLB_SIZE - 1);
      let off: number;
      if (XL[t] === (pcl & ~0xfff) && XH[t] === pch) off = XO[t]! + (pcl & 0xfff);
      else {
        off = this.fetchMiss(pcl, pch);
        if (off < 0) {
          if (this.exitCode !== Exit.NONE) break;
          continue;
        }
      }
      const c = (off >>> 1) & (CACHE_SIZE - 1);
      let fn = cacheFn[c]!;
      if (cacheOff[c] !== off || cacheVl[c] !== pcl || cacheVh[c] !== pch) {
        const f = this.translateAt(off, pcl, pch, c);
        if (!f) {
          if (this.exitCode !== Exit.NONE) break;
          continue;
        }
        fn = f;
      }
      this.executed += fn();
      if (this.F[1] !== 0) this.F[1] = 0;
      if (this.exitCode !== Exit.NONE) break;
    }
    return this.finishRun();
  }

  private finishRun(): RunExit {
    const executed = this.executed;
    this.state.f64[F.INSTRET] = this.state.f64[F.INSTRET]! + executed;
    this.executed = 0;
    const exit: RunExit = { reason: EXIT_NAMES[this.exitCode]!, executed, ...this.exitInfo };
    if (this.shutdownRequest) {
      exit.reason = 'shutdown';
      exit.shutdown = this.shutdownRequest;
    }
    return exit;
  }

  /** Preempt flag, remote flushes, timers.  Returns true to leave the run loop. */
  private poll(): boolean {
    const i32 = this.state.i32;
    if (Atomics.load(i32, W.KICK) !== 0) {
      Atomics.store(i32, W.KICK, 0);
      const flush = Atomics.exchange(i32, W.FLUSH, 0);
      if (flush & 1) this.flushTlb();
      if (flush & 2) this.flushCode();
      if (Atomics.load(i32, W.PREEMPT) !== 0) {
        Atomics.store(i32, W.PREEMPT, 0);
        this.exitCode = Exit.PREEMPTED;
        return true;
      }
    }
    this.updateTimerInterrupts();
    return false;
  }

  /** MTIP from the CLINT comparator; STIP from the SBI timer when we are the firmware. */
  updateTimerInterrupts(): void {
    const i32 = this.state.i32;
    const now = this.mtime();
    const mip = Atomics.load(i32, W.MIP);
    let want = mip;
    if (this.clint) want = now >= this.clint.mtimecmp(this.state.hartid) ? want | 0x80 : want & ~0x80;
    if (this.sbi) {
      const s = this.state;
      const deadline = (s.csrHi(CSR_SLOT.sbiTimer) >>> 0) * TWO32 + (s.csrLo(CSR_SLOT.sbiTimer) >>> 0);
      want = now >= deadline ? want | 0x20 : want & ~0x20;
    }
    if (want !== mip) {
      Atomics.or(i32, W.MIP, want & ~mip);
      Atomics.and(i32, W.MIP, ~(mip & ~want));
    }
  }

  /** The mtime value (10 MHz) at which a timer interrupt of this hart fires next, or Infinity. */
  nextTimerDeadline(): number {
    let t = Infinity;
    const mie = this.state.csrLo(CSR_SLOT.mie);
    if (this.clint && mie & 0x80) t = Math.min(t, this.clint.mtimecmp(this.state.hartid));
    if (this.sbi && mie & 0x20) {
      const s = this.state;
      t = Math.min(t, (s.csrHi(CSR_SLOT.sbiTimer) >>> 0) * TWO32 + (s.csrLo(CSR_SLOT.sbiTimer) >>> 0));
    }
    return t;
  }

  /** Is any interrupt pending and enabled in mie (what ends a WFI, regardless of global enables)? */
  interruptPending(): boolean {
    this.updateTimerInterrupts();
    return (Atomics.load(this.state.i32, W.MIP) & this.state.csrLo(CSR_SLOT.mie)) !== 0;
  }

  /** Take the highest-priority pending interrupt that is enabled at the current privilege (§3.1.9). */
  private takeInterrupt(): boolean {
    const s = this.state;
    const pending = Atomics.load(s.i32, W.MIP) & s.csrLo(CSR_SLOT.mie);
    if (pending === 0) return false;
    const priv = s.priv;
    const mstatus = s.csrLo(CSR_SLOT.mstatus);
    const mideleg = s.csrLo(CSR_SLOT.mideleg);
    let m = pending & ~mideleg;
    if (priv === PRIV.M && (mstatus & MSTATUS.MIE) === 0) m = 0;
    let sLevel = pending & mideleg;
    if (priv === PRIV.M || (priv === PRIV.S && (mstatus & MSTATUS.SIE) === 0)) sLevel = 0;
    const takeable = m !== 0 ? m : sLevel;
    if (takeable === 0) return false;
    for (const irq of IRQ_PRIORITY) {
      if (takeable & (1 << irq)) {
        this.enterTrap(irq, true, 0, 0, this.R[W.PC]!, this.R[W.PC + 1]!);
        return true;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- exits and completions

  /** The Xen hypercall the guest made (after a 'hypercall' exit): a6 = op, a0..a5 = args. */
  hypercall(): { op: number; args: bigint[] } {
    return hypercallOf(this.state);
  }

  /** Return a hypercall's result to the guest: a0 = SBI error (0), a1 = Xen's return value. */
  completeHypercall(result: bigint | number, sbiError = 0): void {
    completeHypercallState(this.state, result, sbiError);
  }

  /** Read 8 bytes at a guest virtual address with the current translation (SBI legacy hart masks). */
  readVirtual64(addr: bigint): bigint | undefined {
    const vl = this.load(Number(BigInt.asIntN(32, addr)), Number(BigInt.asIntN(32, addr >> 32n)), 3);
    if (this.F[0]) {
      this.F[0] = 0;
      return undefined;
    }
    return (BigInt(HI[0]! >>> 0) << 32n) | BigInt(vl >>> 0);
  }

  /** Answer the MMIO access of an 'mmio' exit (the read value; ignored for writes). */
  completeMmio(value: bigint | number = 0): void {
    completeMmioState(this.state, value);
  }

  /** Ask the run loop to stop after the current instruction with 'shutdown' (test device, SRST). */
  requestShutdown(kind: 'poweroff' | 'reboot', code: number): void {
    this.shutdownRequest = { kind, code };
    this.exitCode = Exit.SHUTDOWN;
    this.F[1] = 1;
  }

  // ---------------------------------------------------------------- TLB and code cache

  flushTlb(): void {
    this.RL.fill(INVALID_TAG);
    this.WL.fill(INVALID_TAG);
    this.XL.fill(INVALID_TAG);
  }

  flushCode(): void {
    this.F[1] = 1;
    this.cacheOff.fill(INVALID_TAG);
    this.codePages.fill(0);
  }

  private fill(L: Int32Array, H: Int32Array, O: Int32Array, lo: number, hi: number, off: number): void {
    const t = (lo >>> 12) & (TLB_SIZE - 1);
    L[t] = lo & ~0xfff;
    H[t] = hi;
    O[t] = off & ~0xfff;
  }

  /** Remember that a RAM page holds translated code: drop write-TLB entries to it. */
  private markCodePage(page: number): void {
    if (this.codePages[page]) return;
    this.codePages[page] = 1;
    const WO = this.WO, WL = this.WL, base = page * 4096;
    for (let t = 0; t < TLB_SIZE; t++) if (WO[t] === base) WL[t] = INVALID_TAG;
  }

  /** A store hit a page with translated code: drop that page's blocks (self-modifying code, loaders). */
  private invalidateCodePage(page: number): void {
    this.codePages[page] = 0;
    this.F[1] = 1;
    this.stats.codeInvalidations++;
    const first = (page * 2048) & (CACHE_SIZE - 1);
    for (let i = 0; i < 2048; i++) {
      const c = (first + i) & (CACHE_SIZE - 1);
      if (this.cacheOff[c]! >>> 12 === page) this.cacheOff[c] = INVALID_TAG;
    }
  }

  // ---------------------------------------------------------------- address translation

  /** Privilege used for loads/stores: mstatus.MPRV makes M-mode use MPP (§3.1.6.3). */
  private dataPriv(): number {
    const s = this.state;
    const priv = s.priv;
    if (priv === PRIV.M) {
      const ms = s.csrLo(CSR_SLOT.mstatus);
      if (ms & MSTATUS.MPRV) return (ms >>> 11) & 3;
    }
    return priv;
  }

  /** Virtual -> physical; on failure sets a pending trap and returns -1. */
  private translateAddress(lo: number, hi: number, access: Access, priv: number): number {
    this.stats.tlbMisses++;
    const s = this.state;
    const satpHi = s.csrHi(CSR_SLOT.satp);
    if (priv === PRIV.M || satpMode(satpHi) === 0) return (hi >>> 0) * TWO32 + (lo >>> 0);
    const r = walkSv39({ ram: this.ram, satpLo: s.csrLo(CSR_SLOT.satp), satpHi, priv, mstatusLo: s.csrLo(CSR_SLOT.mstatus) }, lo, hi, access);
    if (r < 0) {
      this.setPendingTrap(-r - 1, lo, hi);
      return -1;
    }
    return r;
  }

  private setPendingTrap(cause: number, tvalLo: number, tvalHi: number): void {
    this.pendKind = Pending.TRAP;
    this.pendCause = cause;
    this.pendTvalLo = tvalLo;
    this.pendTvalHi = tvalHi;
    this.F[0] = 1;
  }

  /** Code-TLB miss: translate the PC, fill the entry; -1 when a fetch trap was taken instead. */
  private fetchMiss(pcl: number, pch: number): number {
    const pa = this.translateAddress(pcl, pch, Access.FETCH, this.state.priv);
    let off = pa < 0 ? -1 : this.ram.offsetOf(pa, 2);
    if (pa >= 0 && off < 0) this.setPendingTrap(CAUSE.INSTRUCTION_ACCESS_FAULT, pcl, pch);
    if (off < 0) {
      this.takePendingTrap(pcl, pch);
      return -1;
    }
    this.fill(this.XL, this.XH, this.XO, pcl, pch, off);
    return off;
  }

  private takePendingTrap(pcl: number, pch: number): void {
    this.F[0] = 0;
    const cause = this.pendCause;
    this.enterTrap(cause, false, this.pendTvalLo, this.pendTvalHi, pcl, pch);
    // A fetch fault whose handler is the faulting address would loop forever: the guest is dead.
    if ((cause === CAUSE.INSTRUCTION_ACCESS_FAULT || cause === CAUSE.INSTRUCTION_PAGE_FAULT) &&
        this.R[W.PC] === pcl && this.R[W.PC + 1] === pch && this.exitCode === Exit.NONE) {
      this.exitCode = Exit.FAULT;
      this.exitInfo = { fault: { cause, tval: this.state.pc, pc: this.state.pc } };
    }
  }

  /**
   * The code for the block at (pcl, pch), RAM offset `off`, cached in slot
   * `c`: interpreted for its first `hotRuns` runs (no compile cost for code
   * that runs a few times), then translated in place.
   */
  private translateAt(off: number, pcl: number, pch: number, c: number): (() => number) | undefined {
    const u16 = this.ram.u16;
    const pageOff = pcl & 0xfff;
    const first = u16[off >> 1]!;
    if ((first & 3) === 3 && pageOff === 0xffe) {
      // A 32-bit instruction straddling two pages: fetch the upper half through the MMU; do not cache.
      const [nl, nh] = add64(pcl, pch, 2);
      const pa = this.translateAddress(nl, nh, Access.FETCH, this.state.priv);
      const off2 = pa < 0 ? -1 : this.ram.offsetOf(pa, 2);
      if (pa >= 0 && off2 < 0) this.setPendingTrap(CAUSE.INSTRUCTION_ACCESS_FAULT, nl, nh);
      if (off2 < 0) {
        this.takePendingTrap(pcl, pch);
        return undefined;
      }
      const inst = (first | (u16[off2 >> 1]! << 16)) | 0;
      if (this.hotRuns === 0) return compile(translate(() => -1, inst), this.env, pcl, pch);
      const block = decodeBlock(() => -1, pcl, pch, inst);
      return () => this.interp.run(block);
    }
    const base = off >> 1;
    const fetch16 = (i: number): number => (pageOff + 2 * i + 2 > 4096 ? -1 : u16[base + i]!);
    let fn: () => number;
    if (this.hotRuns === 0) fn = this.compileBlock(fetch16, pcl, pch);
    else {
      const block = decodeBlock(fetch16, pcl, pch);
      this.stats.blocksInterpreted++;
      const hot = this.hotRuns, interp = this.interp;
      let runs = 0;
      fn = () => {
        if (++runs <= hot) return interp.run(block);
        // Only the run loop calls this, after matching slot c's tags: the slot is still ours.
        const compiled = this.compileBlock(fetch16, pcl, pch);
        this.cacheFn[c] = compiled;
        return compiled();
      };
    }
    this.markCodePage(off >>> 12);
    this.cacheOff[c] = off;
    this.cacheVl[c] = pcl;
    this.cacheVh[c] = pch;
    this.cacheFn[c] = fn;
    return fn;
  }

  private compileBlock(fetch16: (i: number) => number, pcl: number, pch: number): () => number {
    this.stats.blocksTranslated++;
    return compile(translate(fetch16), this.env, pcl, pch);
  }

  // ---------------------------------------------------------------- loads and stores (slow paths)

  load(lo: number, hi: number, size: number): number {
    if ((lo & ((1 << size) - 1)) !== 0) return this.loadMisaligned(lo, hi, size);
    const pa = this.translateAddress(lo, hi, Access.LOAD, this.dataPriv());
    if (pa < 0) return 0;
    const off = this.ram.offsetOf(pa, 1 << size);
    if (off >= 0) {
      this.fill(this.RL, this.RH, this.RO, lo, hi, off);
      return this.readRam(off, size);
    }
    return this.mmioRead(pa, size, lo, hi);
  }

  private readRam(off: number, size: number): number {
    const ram = this.ram;
    switch (size) {
      case 0: return ram.u8[off]!;
      case 1: return ram.u16[off >> 1]!;
      case 2: return ram.i32[off >> 2]!;
      default:
        HI[0] = ram.i32[(off >> 2) + 1]!;
        return ram.i32[off >> 2]!;
    }
  }

  /** Misaligned loads are emulated byte by byte after checking both ends translate (no partial effects). */
  private loadMisaligned(lo: number, hi: number, size: number): number {
    const n = 1 << size;
    if (!this.probe(lo, hi, n, Access.LOAD)) return 0;
    let vl = 0, vh = 0;
    for (let i = 0; i < n; i++) {
      const [bl, bh] = add64(lo, hi, i);
      const b = this.load(bl, bh, 0);
      if (this.F[0]) return 0;
      if (i < 4) vl |= b << (8 * i);
      else vh |= b << (8 * (i - 4));
    }
    HI[0] = vh;
    return vl;
  }

  /** Check that the first and last byte of an access translate; sets the trap (tval = the address) if not. */
  private probe(lo: number, hi: number, n: number, access: Access): boolean {
    const priv = this.dataPriv();
    const [el, eh] = add64(lo, hi, n - 1);
    if (this.translateAddress(lo, hi, access, priv) < 0 || this.translateAddress(el, eh, access, priv) < 0) {
      this.pendTvalLo = lo;
      this.pendTvalHi = hi;
      return false;
    }
    return true;
  }

  store(lo: number, hi: number, size: number, vl: number, vh: number): void {
    if ((lo & ((1 << size) - 1)) !== 0) return this.storeMisaligned(lo, hi, size, vl, vh);
    const pa = this.translateAddress(lo, hi, Access.STORE, this.dataPriv());
    if (pa < 0) return;
    const off = this.ram.offsetOf(pa, 1 << size);
    if (off >= 0) {
      const page = off >>> 12;
      if (this.codePages[page]) this.invalidateCodePage(page);
      else this.fill(this.WL, this.WH, this.WO, lo, hi, off);
      this.writeRam(off, size, vl, vh);
      return;
    }
    this.mmioWrite(pa, size, vl, vh, lo, hi);
  }

  private writeRam(off: number, size: number, vl: number, vh: number): void {
    const ram = this.ram;
    switch (size) {
      case 0: ram.u8[off] = vl; return;
      case 1: ram.u16[off >> 1] = vl; return;
      case 2: ram.i32[off >> 2] = vl; return;
      default:
        ram.i32[off >> 2] = vl;
        ram.i32[(off >> 2) + 1] = vh;
    }
  }

  private storeMisaligned(lo: number, hi: number, size: number, vl: number, vh: number): void {
    const n = 1 << size;
    if (!this.probe(lo, hi, n, Access.STORE)) return;
    for (let i = 0; i < n; i++) {
      const [bl, bh] = add64(lo, hi, i);
      this.store(bl, bh, 0, i < 4 ? vl >>> (8 * i) : vh >>> (8 * (i - 4)), 0);
      if (this.F[0]) return;
    }
  }

  /** Does the pending restartable MMIO access match this one and carry its answer? */
  private takeMmioAnswer(pa: number, size: number, write: boolean): boolean {
    const i32 = this.state.i32;
    if (i32[W.MMIO_STATE] !== 2) return false;
    if (i32[W.MMIO_WRITE] !== (write ? 1 : 0) || i32[W.MMIO_SIZE] !== size) return false;
    if ((i32[W.MMIO_ADDR]! >>> 0) + (i32[W.MMIO_ADDR + 1]! >>> 0) * TWO32 !== pa) return false;
    i32[W.MMIO_STATE] = 0;
    return true;
  }

  private mmioExit(pa: number, size: number, write: boolean, vl: number, vh: number): void {
    const i32 = this.state.i32;
    i32[W.MMIO_STATE] = 1;
    i32[W.MMIO_WRITE] = write ? 1 : 0;
    i32[W.MMIO_SIZE] = size;
    i32[W.MMIO_ADDR] = pa % TWO32 | 0;
    i32[W.MMIO_ADDR + 1] = Math.floor(pa / TWO32) | 0;
    i32[W.MMIO_VALUE] = vl;
    i32[W.MMIO_VALUE + 1] = vh;
    this.pendKind = Pending.MMIO;
    this.F[0] = 1;
    this.exitInfo = {
      mmio: { write, addr: pa, size: 1 << size, value: write ? (BigInt(vh >>> 0) << 32n) | BigInt(vl >>> 0) : 0n },
    };
  }

  private mmioRead(pa: number, size: number, lo: number, hi: number): number {
    if (this.takeMmioAnswer(pa, size, false)) {
      HI[0] = this.state.i32[W.MMIO_VALUE + 1]!;
      return this.state.i32[W.MMIO_VALUE]!;
    }
    const n = 1 << size;
    const region = this.bus.find(pa, n);
    if (!region) {
      this.setPendingTrap(CAUSE.LOAD_ACCESS_FAULT, lo, hi);
      return 0;
    }
    const dev = region.device, o = pa - region.base;
    let v: number, vh = 0;
    if (size === 3) {
      v = dev.read(o, 4);
      if (v !== MMIO_READ_EXIT) vh = dev.read(o + 4, 4);
    } else v = dev.read(o, n);
    if (v === MMIO_READ_EXIT || vh === MMIO_READ_EXIT) {
      this.mmioExit(pa, size, false, 0, 0);
      return 0;
    }
    HI[0] = vh | 0;
    return size === 0 ? v & 0xff : size === 1 ? v & 0xffff : v | 0; // the translator sign-extends as the load asks
  }

  private mmioWrite(pa: number, size: number, vl: number, vh: number, lo: number, hi: number): void {
    if (this.takeMmioAnswer(pa, size, true)) return;
    const n = 1 << size;
    const region = this.bus.find(pa, n);
    if (!region) {
      this.setPendingTrap(CAUSE.STORE_ACCESS_FAULT, lo, hi);
      return;
    }
    const dev = region.device, o = pa - region.base;
    let r: unknown;
    if (size === 3) {
      r = dev.write(o, 4, vl);
      if (r !== MMIO.EXIT) r = dev.write(o + 4, 4, vh) ?? r;
    } else r = dev.write(o, n, size === 0 ? vl & 0xff : size === 1 ? vl & 0xffff : vl);
    if (r === MMIO.EXIT) this.mmioExit(pa, size, true, vl, vh);
    else if (r === MMIO.STOP && this.exitCode === Exit.NONE) {
      this.exitCode = Exit.SHUTDOWN;
      this.F[1] = 1;
    }
  }

  // ---------------------------------------------------------------- atomics (RV64A, §8)

  /** Physical RAM offset for an AMO/LR/SC, or -1 with the trap pending (alignment is required). */
  private atomicOffset(lo: number, hi: number, size: number, access: Access): number {
    if ((lo & ((1 << size) - 1)) !== 0) {
      this.setPendingTrap(access === Access.LOAD ? CAUSE.LOAD_MISALIGNED : CAUSE.STORE_MISALIGNED, lo, hi);
      return -1;
    }
    const pa = this.translateAddress(lo, hi, access, this.dataPriv());
    if (pa < 0) return -1;
    const off = this.ram.offsetOf(pa, 1 << size);
    if (off < 0) {
      this.setPendingTrap(access === Access.LOAD ? CAUSE.LOAD_ACCESS_FAULT : CAUSE.STORE_ACCESS_FAULT, lo, hi);
      return -1;
    }
    if (access === Access.STORE && this.codePages[off >>> 12]) this.invalidateCodePage(off >>> 12);
    return off;
  }

  amo(funct5: number, size: number, lo: number, hi: number, vl: number, vh: number): number {
    const off = this.atomicOffset(lo, hi, size, Access.STORE);
    if (off < 0) return 0;
    if (size === 2) {
      const old = amo32(this.ram.i32, off >> 2, funct5, vl);
      HI[0] = old >> 31;
      return old;
    }
    const old = amo64(this.ram.i64, off >> 3, funct5, (BigInt(vh) << 32n) | BigInt(vl >>> 0));
    HI[0] = Number(BigInt.asIntN(32, old >> 32n));
    return Number(BigInt.asIntN(32, old));
  }

  fence(): void {
    fullFence();
  }

  /** LR: load and remember (address, value); SC succeeds only if memory still holds that value (CAS). */
  lr(size: number, lo: number, hi: number): number {
    const off = this.atomicOffset(lo, hi, size, Access.LOAD);
    if (off < 0) return 0;
    const i32 = this.state.i32;
    const vl = Atomics.load(this.ram.i32, off >> 2);
    const vh = size === 3 ? Atomics.load(this.ram.i32, (off >> 2) + 1) : vl >> 31;
    i32[W.RES_VALID] = 1;
    i32[W.RES_SIZE] = size;
    i32[W.RES_ADDR] = off;
    i32[W.RES_VAL] = vl;
    i32[W.RES_VAL + 1] = vh;
    HI[0] = vh;
    return vl;
  }

  sc(size: number, lo: number, hi: number, vl: number, vh: number): number {
    const off = this.atomicOffset(lo, hi, size, Access.STORE);
    if (off < 0) return 0;
    const i32 = this.state.i32;
    const ok = i32[W.RES_VALID] === 1 && i32[W.RES_SIZE] === size && i32[W.RES_ADDR] === off;
    i32[W.RES_VALID] = 0; // an SC always clears the reservation (§8.2)
    HI[0] = 0;
    if (!ok) return 1;
    if (size === 2) return Atomics.compareExchange(this.ram.i32, off >> 2, i32[W.RES_VAL]!, vl) === i32[W.RES_VAL] ? 0 : 1;
    const expected = (BigInt(i32[W.RES_VAL + 1]!) << 32n) | BigInt(i32[W.RES_VAL]! >>> 0);
    const next = (BigInt(vh) << 32n) | BigInt(vl >>> 0);
    return Atomics.compareExchange(this.ram.i64, off >> 3, expected, next) === expected ? 0 : 1;
  }

  // ---------------------------------------------------------------- CSRs

  csr(inst: number, vl: number, vh: number, k: number): number {
    const f3 = (inst >>> 12) & 7;
    const num = inst >>> 20;
    const src = (inst >>> 15) & 31;
    const writes = (f3 & 3) === 1 || src !== 0;
    if (!csrAccessAllowed(this, num, writes)) return this.illegalCsr(inst);
    const old = readCsr(this, num, k); // reads have no side effects here, so csrrw x0 may read too
    if (old === undefined) return this.illegalCsr(inst);
    if (writes) {
      const v = (BigInt(vh) << 32n) | BigInt(vl >>> 0);
      const op = f3 & 3;
      writeCsr(this, num, op === 1 ? v : op === 2 ? old | v : old & ~v, k);
    }
    HI[0] = Number(BigInt.asIntN(32, old >> 32n));
    return Number(BigInt.asIntN(32, old));
  }

  private illegalCsr(inst: number): number {
    this.setPendingTrap(CAUSE.ILLEGAL_INSTRUCTION, inst, 0);
    return 0;
  }

  instret(k: number): number {
    return this.state.f64[F.INSTRET]! + this.executed + k;
  }
  setInstret(v: number, k: number): void {
    this.state.f64[F.INSTRET] = v - this.executed - k - 1;
  }
  mtime(): number {
    return this.clint ? this.clint.now() : Math.floor((performance.timeOrigin + performance.now()) * 10_000);
  }
  interruptsChanged(): void {
    this.pollAt = 0;
    this.F[1] = 1;
  }

  // ---------------------------------------------------------------- traps

  fault(pcl: number, pch: number, k: number): number {
    this.F[0] = 0;
    if (this.pendKind === Pending.TRAP) {
      this.enterTrap(this.pendCause, false, this.pendTvalLo, this.pendTvalHi, pcl, pch);
    } else {
      this.R[W.PC] = pcl;
      this.R[W.PC + 1] = pch;
      if (this.exitCode === Exit.NONE) this.exitCode = Exit.MMIO;
    }
    return k;
  }

  trap(cause: number, tvall: number, tvalh: number, pcl: number, pch: number, k: number): number {
    this.enterTrap(cause, false, tvall, tvalh, pcl, pch);
    return k;
  }

  /**
   * Trap entry (§3.1.6.1, §4.1.1): to S if we are in S/U and the cause is
   * delegated in medeleg/mideleg, else to M.  xPIE <- xIE, xIE <- 0,
   * xPP <- privilege, pc <- xtvec (+ 4*cause for vectored interrupts).
   */
  private enterTrap(cause: number, interrupt: boolean, tvall: number, tvalh: number, epcl: number, epch: number): void {
    const s = this.state;
    const priv = s.priv;
    const deleg = interrupt ? s.csrLo(CSR_SLOT.mideleg) : s.csrLo(CSR_SLOT.medeleg);
    const causeHi = interrupt ? 0x80000000 | 0 : 0;
    let ms = s.csrLo(CSR_SLOT.mstatus);
    let tvecLo: number, tvecHi: number;
    if (priv <= PRIV.S && ((deleg >>> cause) & 1) !== 0) {
      s.setCsr(CSR_SLOT.scause, cause, causeHi);
      s.setCsr(CSR_SLOT.sepc, epcl, epch);
      s.setCsr(CSR_SLOT.stval, tvall, tvalh);
      ms = (ms & ~(MSTATUS.SPIE | MSTATUS.SIE | MSTATUS.SPP)) | (ms & MSTATUS.SIE ? MSTATUS.SPIE : 0) | (priv === PRIV.S ? MSTATUS.SPP : 0);
      s.priv = PRIV.S;
      tvecLo = s.csrLo(CSR_SLOT.stvec);
      tvecHi = s.csrHi(CSR_SLOT.stvec);
    } else {
      if (this.sbi) {
        // PVH: there is no M-mode firmware to take this trap; the guest has crashed.
        this.exitCode = Exit.FAULT;
        this.exitInfo = { fault: { cause: interrupt ? cause + 2 ** 63 : cause, tval: u64(tvall, tvalh), pc: u64(epcl, epch) } };
        this.R[W.PC] = epcl;
        this.R[W.PC + 1] = epch;
        return;
      }
      s.setCsr(CSR_SLOT.mcause, cause, causeHi);
      s.setCsr(CSR_SLOT.mepc, epcl, epch);
      s.setCsr(CSR_SLOT.mtval, tvall, tvalh);
      ms = (ms & ~(MSTATUS.MPIE | MSTATUS.MIE | MSTATUS.MPP)) | (ms & MSTATUS.MIE ? MSTATUS.MPIE : 0) | (priv << MSTATUS.MPP_SHIFT);
      s.priv = PRIV.M;
      tvecLo = s.csrLo(CSR_SLOT.mtvec);
      tvecHi = s.csrHi(CSR_SLOT.mtvec);
    }
    s.setCsr(CSR_SLOT.mstatus, ms, s.csrHi(CSR_SLOT.mstatus));
    const vectored = (tvecLo & 3) === 1 && interrupt;
    this.R[W.PC] = (tvecLo & ~3) + (vectored ? 4 * cause : 0);
    this.R[W.PC + 1] = tvecHi;
    s.i32[W.RES_VALID] = 0;
    if (priv !== s.priv) this.flushTlb();
  }

  // ---------------------------------------------------------------- system instructions

  system(inst: number, pcl: number, pch: number, len: number, k: number): number {
    const s = this.state;
    const priv = s.priv;
    const [nl, nh] = add64(pcl, pch, len);
    const setNext = (): void => {
      this.R[W.PC] = nl;
      this.R[W.PC + 1] = nh;
    };
    if ((inst & 0x7f) === 0x0f) { // FENCE.I: translated code may be stale (Zifencei)
      this.flushCode();
      setNext();
      return k + 1;
    }
    const ms = s.csrLo(CSR_SLOT.mstatus);
    if ((inst & 0xfe007fff) === 0x12000073) { // SFENCE.VMA
      if (priv === PRIV.U || (priv === PRIV.S && ms & MSTATUS.TVM)) return this.trap(CAUSE.ILLEGAL_INSTRUCTION, inst, 0, pcl, pch, k);
      this.flushTlb();
      setNext();
      return k + 1;
    }
    switch (inst) {
      case 0x00000073: { // ECALL
        if (this.sbi && priv === PRIV.S) return this.sbiCall(nl, nh, k);
        const cause = priv === PRIV.U ? CAUSE.ECALL_U : priv === PRIV.S ? CAUSE.ECALL_S : CAUSE.ECALL_M;
        return this.trap(cause, 0, 0, pcl, pch, k);
      }
      case 0x00100073: // EBREAK: mtval = pc of the breakpoint
        return this.trap(CAUSE.BREAKPOINT, pcl, pch, pcl, pch, k);
      case 0x30200073: { // MRET (§3.3.2)
        if (priv !== PRIV.M) break;
        const mpp = (ms >>> 11) & 3;
        let next = (ms & ~(MSTATUS.MIE | MSTATUS.MPP)) | (ms & MSTATUS.MPIE ? MSTATUS.MIE : 0) | MSTATUS.MPIE;
        if (mpp !== PRIV.M) next &= ~MSTATUS.MPRV;
        s.setCsr(CSR_SLOT.mstatus, next, s.csrHi(CSR_SLOT.mstatus));
        s.priv = mpp;
        this.R[W.PC] = s.csrLo(CSR_SLOT.mepc);
        this.R[W.PC + 1] = s.csrHi(CSR_SLOT.mepc);
        this.flushTlb();
        this.interruptsChanged();
        return k + 1;
      }
      case 0x10200073: { // SRET
        if (priv === PRIV.U || (priv === PRIV.S && ms & MSTATUS.TSR)) break;
        const spp = ms & MSTATUS.SPP ? PRIV.S : PRIV.U;
        const next = (ms & ~(MSTATUS.SIE | MSTATUS.SPP | MSTATUS.MPRV)) | (ms & MSTATUS.SPIE ? MSTATUS.SIE : 0) | MSTATUS.SPIE;
        s.setCsr(CSR_SLOT.mstatus, next, s.csrHi(CSR_SLOT.mstatus));
        s.priv = spp;
        this.R[W.PC] = s.csrLo(CSR_SLOT.sepc);
        this.R[W.PC + 1] = s.csrHi(CSR_SLOT.sepc);
        this.flushTlb();
        this.interruptsChanged();
        return k + 1;
      }
      case 0x10500073: // WFI: illegal in U; in S when TW=1 (§3.1.6.5)
        if (priv === PRIV.U || (priv === PRIV.S && ms & MSTATUS.TW)) break;
        setNext();
        if (!this.interruptPending() && this.exitCode === Exit.NONE) this.exitCode = Exit.WFI;
        this.interruptsChanged();
        return k + 1;
    }
    return this.trap(CAUSE.ILLEGAL_INSTRUCTION, inst, 0, pcl, pch, k);
  }

  private sbiCall(nl: number, nh: number, k: number): number {
    this.R[W.PC] = nl;
    this.R[W.PC + 1] = nh;
    const outcome = this.sbi!.ecall(this);
    const exit = [Exit.NONE, Exit.HYPERCALL, Exit.SHUTDOWN, Exit.STOPPED, Exit.WFI][outcome]!;
    if (exit === Exit.WFI && this.interruptPending()) return k + 1;
    if (exit !== Exit.NONE && this.exitCode === Exit.NONE) this.exitCode = exit;
    this.interruptsChanged();
    return k + 1;
  }
}

function add64(lo: number, hi: number, n: number): [number, number] {
  const l = (lo + n) | 0;
  return [l, (hi + ((l >>> 0) < (lo >>> 0) ? 1 : 0)) | 0];
}

function u64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** 32-bit AMOs on shared RAM (funct5 per ISA manual table 8.2). */
function amo32(a: Int32Array, i: number, funct5: number, v: number): number {
  switch (funct5) {
    case 1: return Atomics.exchange(a, i, v);
    case 0: return Atomics.add(a, i, v);
    case 4: return Atomics.xor(a, i, v);
    case 12: return Atomics.and(a, i, v);
    case 8: return Atomics.or(a, i, v);
  }
  for (;;) {
    const old = Atomics.load(a, i);
    let next: number;
    switch (funct5) {
      case 16: next = Math.min(old, v); break; // amomin
      case 20: next = Math.max(old, v); break; // amomax
      case 24: next = (old >>> 0) < (v >>> 0) ? old : v; break; // amominu
      default: next = (old >>> 0) > (v >>> 0) ? old : v; break; // amomaxu
    }
    if (Atomics.compareExchange(a, i, old, next) === old) return old;
  }
}

function amo64(a: BigInt64Array, i: number, funct5: number, v: bigint): bigint {
  v = BigInt.asIntN(64, v);
  switch (funct5) {
    case 1: return Atomics.exchange(a, i, v);
    case 0: return Atomics.add(a, i, v);
    case 4: return Atomics.xor(a, i, v);
    case 12: return Atomics.and(a, i, v);
    case 8: return Atomics.or(a, i, v);
  }
  for (;;) {
    const old = Atomics.load(a, i);
    let next: bigint;
    switch (funct5) {
      case 16: next = old < v ? old : v; break;
      case 20: next = old > v ? old : v; break;
      case 24: next = BigInt.asUintN(64, old) < BigInt.asUintN(64, v) ? old : v; break;
      default: next = BigInt.asUintN(64, old) > BigInt.asUintN(64, v) ? old : v; break;
    }
    if (Atomics.compareExchange(a, i, old, next) === old) return old;
  }
}
