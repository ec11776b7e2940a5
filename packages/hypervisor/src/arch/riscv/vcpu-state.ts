/**
 * The architectural state of one vCPU, laid out in a SharedArrayBuffer so
 * that any worker thread can resume any vCPU (DESIGN §6).  Everything that
 * must survive a move between threads lives here; what a thread may rebuild
 * (soft TLB, translated blocks) does not.
 *
 * 64-bit values are stored as two int32 words, low word first, because the
 * translator computes on (lo, hi) int32 pairs — JS has no fast 64-bit ints.
 */

/** Word indexes into the Int32Array view. */
export const W = {
  /** x0..x31: x[i] lo at 2i, hi at 2i+1. */
  X: 0,
  PC: 64,
  /** Current privilege: 0 = U, 1 = S, 3 = M. */
  PRIV: 66,
  HARTID: 67,
  /** mip, updated with Atomics from other threads (CLINT, PLIC, event channels). */
  MIP: 68,
  /** Non-zero asks the hart to look at interrupts / flush requests at once. */
  KICK: 69,
  /** Non-zero asks the run loop to return 'preempted' at its next poll (scheduler). */
  PREEMPT: 70,
  /** Bit 0: flush TLB, bit 1: flush translated code (remote fences). */
  FLUSH: 71,
  /** SBI HSM state (SBI_HSM_STATE). */
  HSM: 72,
  /** 1 when the hypervisor serves SBI (PVH guest in S-mode, no M-mode firmware). */
  SBI: 73,
  /** LR/SC reservation: valid flag, size log2, address lo/hi, loaded value lo/hi. */
  RES_VALID: 74,
  RES_SIZE: 75,
  RES_ADDR: 76,
  RES_VAL: 78,
  /** A restartable MMIO access that left the run loop (see Hart.completeMmio). */
  MMIO_STATE: 80, // 0 none, 1 waiting for the device model, 2 completed
  MMIO_WRITE: 81,
  MMIO_SIZE: 82,
  MMIO_ADDR: 84, // lo, hi
  MMIO_VALUE: 86, // lo, hi
  /**
   * 1 from the moment a pCPU worker stops this vCPU with an exit the main
   * thread must handle (hypercall, MMIO, WFI, ...) until the main thread has
   * handled it: no worker may run the vCPU meanwhile, whatever was posted.
   */
  EXIT_PENDING: 88,
  /** CSR slots, two words each (lo, hi), from here. */
  CSR: 96,
} as const;

/** CSR storage slots (index of the pair, add W.CSR + 2*slot). */
export const CSR_SLOT = {
  mstatus: 0,
  misa: 1,
  medeleg: 2,
  mideleg: 3,
  mie: 4,
  mtvec: 5,
  mcounteren: 6,
  mscratch: 7,
  mepc: 8,
  mcause: 9,
  mtval: 10,
  stvec: 11,
  scounteren: 12,
  sscratch: 13,
  sepc: 14,
  scause: 15,
  stval: 16,
  satp: 17,
  menvcfg: 18,
  senvcfg: 19,
  mcountinhibit: 20,
  pmpcfg0: 21,
  pmpcfg2: 22,
  pmpaddr0: 23, // .. pmpaddr15 = 38
  /** SBI TIME deadline (mtime units) for PVH guests; all ones = none. */
  sbiTimer: 40,
} as const;

/** Float64 slots (index into the Float64Array view, which starts at byte F64_BASE). */
export const F = {
  /** Instructions retired (minstret); a double is exact up to 2^53. */
  INSTRET: 0,
} as const;

const I32_WORDS = 192;
const F64_BASE = I32_WORDS * 4;
const F64_WORDS = 8;
export const VCPU_STATE_BYTES = F64_BASE + F64_WORDS * 8;

/** Typed views over one vCPU's state buffer. */
export class VcpuState {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  constructor(readonly sab: SharedArrayBuffer) {
    if (sab.byteLength < VCPU_STATE_BYTES) throw new RangeError(`vCPU state buffer too small: ${sab.byteLength}`);
    this.i32 = new Int32Array(sab, 0, I32_WORDS);
    this.f64 = new Float64Array(sab, F64_BASE, F64_WORDS);
  }

  static create(hartid: number): VcpuState {
    const s = new VcpuState(new SharedArrayBuffer(VCPU_STATE_BYTES));
    s.i32[W.HARTID] = hartid;
    return s;
  }

  csrLo(slot: number): number {
    return this.i32[W.CSR + 2 * slot]!;
  }
  csrHi(slot: number): number {
    return this.i32[W.CSR + 2 * slot + 1]!;
  }
  setCsr(slot: number, lo: number, hi: number): void {
    this.i32[W.CSR + 2 * slot] = lo;
    this.i32[W.CSR + 2 * slot + 1] = hi;
  }
  csrBig(slot: number): bigint {
    return (BigInt(this.csrHi(slot)) << 32n) | BigInt(this.csrLo(slot) >>> 0);
  }
  setCsrBig(slot: number, v: bigint): void {
    this.setCsr(slot, Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n)));
  }

  /** x[i] as an unsigned 64-bit bigint (for people and tests, not the hot path). */
  reg(i: number): bigint {
    return (BigInt(this.i32[2 * i + 1]! >>> 0) << 32n) | BigInt(this.i32[2 * i]! >>> 0);
  }
  setReg(i: number, v: bigint | number): void {
    if (i === 0) return;
    const b = BigInt.asUintN(64, BigInt(v));
    this.i32[2 * i] = Number(BigInt.asIntN(32, b));
    this.i32[2 * i + 1] = Number(BigInt.asIntN(32, b >> 32n));
  }
  get pc(): bigint {
    return (BigInt(this.i32[W.PC + 1]! >>> 0) << 32n) | BigInt(this.i32[W.PC]! >>> 0);
  }
  set pc(v: bigint) {
    const b = BigInt.asUintN(64, v);
    this.i32[W.PC] = Number(BigInt.asIntN(32, b));
    this.i32[W.PC + 1] = Number(BigInt.asIntN(32, b >> 32n));
  }
  get priv(): number {
    return this.i32[W.PRIV]!;
  }
  set priv(p: number) {
    this.i32[W.PRIV] = p;
  }
  get hartid(): number {
    return this.i32[W.HARTID]!;
  }
  get instret(): number {
    return this.f64[F.INSTRET]!;
  }
}

/**
 * Raise or lower an interrupt-pending bit of a vCPU from any thread (event
 * channels, CLINT, PLIC).  `cause` is the interrupt number (mip bit), e.g.
 * 9 = SEIP.  The hart notices at its next poll (every few thousand
 * instructions) or when it is next resumed.
 */
export function setInterruptPending(state: VcpuState, cause: number, pending: boolean): void {
  const bit = 1 << cause;
  if (pending) Atomics.or(state.i32, W.MIP, bit);
  else Atomics.and(state.i32, W.MIP, ~bit);
  Atomics.store(state.i32, W.KICK, 1);
  Atomics.notify(state.i32, W.KICK);
}

/** Ask a running vCPU to return from `run` with reason 'preempted' at its next poll. */
export function requestPreempt(state: VcpuState): void {
  Atomics.store(state.i32, W.PREEMPT, 1);
  Atomics.store(state.i32, W.KICK, 1);
  Atomics.notify(state.i32, W.KICK);
}

/** Ask a vCPU to flush its TLB (bit 0) and/or translated code (bit 1) at its next poll. */
export function requestFlush(state: VcpuState, what: number): void {
  Atomics.or(state.i32, W.FLUSH, what);
  Atomics.store(state.i32, W.KICK, 1);
}

/**
 * Power-on reset of a vCPU's architectural state to `pc` in privilege `priv`
 * (M for firmware, S for PVH kernels).  `sbi` says the hypervisor is the
 * M-mode firmware (PVH).  Usable on any thread without a Hart (the scheduler
 * resets vCPUs on the main thread); Hart.reset also drops its caches.
 */
export function resetVcpuState(s: VcpuState, pc: bigint, priv: number, sbi: boolean): void {
  for (let i = 0; i < 64; i++) s.i32[i] = 0;
  s.pc = pc;
  s.priv = priv;
  for (const slot of Object.values(CSR_SLOT)) s.setCsr(slot, 0, 0);
  s.setCsr(CSR_SLOT.sbiTimer, -1, -1);
  Atomics.store(s.i32, W.MIP, 0);
  s.i32[W.RES_VALID] = 0;
  s.i32[W.MMIO_STATE] = 0;
  s.i32[W.EXIT_PENDING] = 0;
  s.i32[W.SBI] = sbi ? 1 : 0;
  if (sbi) {
    // We are the M-mode firmware: delegate every delegable trap to S (like OpenSBI) and expose the counters.
    s.setCsr(CSR_SLOT.medeleg, 0xb3ff, 0);
    s.setCsr(CSR_SLOT.mideleg, 0x222, 0);
    s.setCsr(CSR_SLOT.mcounteren, 7, 0);
    // MPP=S so a stray mret would not escalate; not used by PVH guests.
    s.setCsr(CSR_SLOT.mstatus, 1 << 11, 0);
  }
}

/** Answer the MMIO access of an 'mmio' exit from any thread (the read value; ignored for writes). */
export function completeMmioState(s: VcpuState, value: bigint | number = 0): void {
  const v = BigInt.asUintN(64, BigInt(value));
  s.i32[W.MMIO_VALUE] = Number(BigInt.asIntN(32, v));
  s.i32[W.MMIO_VALUE + 1] = Number(BigInt.asIntN(32, v >> 32n));
  s.i32[W.MMIO_STATE] = 2;
}

/** Worker side: this vCPU's exit now belongs to the main thread. */
export function markExitPending(s: VcpuState): void {
  Atomics.store(s.i32, W.EXIT_PENDING, 1);
}

/** Main-thread side: the exit is handled; a worker may run the vCPU again. */
export function clearExitPending(s: VcpuState): void {
  Atomics.store(s.i32, W.EXIT_PENDING, 0);
}

/** The Xen hypercall of a 'hypercall' exit, read from any thread: a6 = op, a0..a5 = args. */
export function hypercallOf(s: VcpuState): { op: number; args: bigint[] } {
  return { op: Number(s.reg(16)), args: [10, 11, 12, 13, 14, 15].map((r) => s.reg(r)) };
}

/** Return a hypercall's result from any thread: a0 = SBI error (0), a1 = Xen's return value. */
export function completeHypercallState(s: VcpuState, result: bigint | number, sbiError = 0): void {
  s.setReg(10, sbiError);
  s.setReg(11, result);
}
