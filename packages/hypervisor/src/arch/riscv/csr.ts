/**
 * Control and status registers (privileged spec 1.12, ch. 2, 3 and 4).
 *
 * A CSR that is not listed here does not exist: accessing it raises an
 * illegal-instruction exception, which firmware relies on to probe
 * (OpenSBI reads pmpaddr16, mhpmcounter19, scountovf, mtopi, mstateen0 on
 * purpose).  CSR accesses are rare next to loads and ALU ops, so this file
 * computes in bigint for clarity.
 */
import { CSR_SLOT, W, type VcpuState } from './vcpu-state.js';
import { MSTATUS, PRIV } from './trap.js';

export const CSR = {
  sstatus: 0x100, sie: 0x104, stvec: 0x105, scounteren: 0x106, senvcfg: 0x10a,
  sscratch: 0x140, sepc: 0x141, scause: 0x142, stval: 0x143, sip: 0x144, satp: 0x180,
  mstatus: 0x300, misa: 0x301, medeleg: 0x302, mideleg: 0x303, mie: 0x304, mtvec: 0x305, mcounteren: 0x306,
  menvcfg: 0x30a, mcountinhibit: 0x320, mscratch: 0x340, mepc: 0x341, mcause: 0x342, mtval: 0x343, mip: 0x344,
  pmpcfg0: 0x3a0, pmpcfg2: 0x3a2, pmpaddr0: 0x3b0,
  mcycle: 0xb00, minstret: 0xb02, cycle: 0xc00, time: 0xc01, instret: 0xc02,
  mvendorid: 0xf11, marchid: 0xf12, mimpid: 0xf13, mhartid: 0xf14, mconfigptr: 0xf15,
} as const;

/** misa: MXL=2 (64-bit), extensions A, C, I, M, S, U. */
export const MISA = (2n << 62n) | (1n << 0n) | (1n << 2n) | (1n << 8n) | (1n << 12n) | (1n << 18n) | (1n << 20n);

/** mstatus: UXL = SXL = 2 (read-only, 64-bit U and S modes). */
const MSTATUS_XL = (2n << 32n) | (2n << 34n);
const MSTATUS_WRITABLE = BigInt(
  MSTATUS.SIE | MSTATUS.MIE | MSTATUS.SPIE | MSTATUS.MPIE | MSTATUS.SPP | MSTATUS.MPP | MSTATUS.MPRV |
    MSTATUS.SUM | MSTATUS.MXR | MSTATUS.TVM | MSTATUS.TW | MSTATUS.TSR,
);
/** The mstatus bits sstatus shows (§4.1.1): SIE SPIE UBE SPP VS FS XS SUM MXR UXL SD. */
const SSTATUS_VISIBLE = BigInt(MSTATUS.SIE | MSTATUS.SPIE | MSTATUS.SPP | MSTATUS.SUM | MSTATUS.MXR) | (3n << 32n);
const SSTATUS_WRITABLE = BigInt(MSTATUS.SIE | MSTATUS.SPIE | MSTATUS.SPP | MSTATUS.SUM | MSTATUS.MXR);
/** Interrupt bits that exist: SSI MSI STI MTI SEI MEI. */
const MIE_WRITABLE = 0xaaan;
/** Only supervisor interrupts can be delegated (§3.1.8). */
const MIDELEG_WRITABLE = 0x222n;
/** All exceptions but ecall-from-M (11) and the reserved 10 and 14 (§3.1.8). */
const MEDELEG_WRITABLE = 0xb3ffn;
/** M-mode software may set SSIP, STIP, SEIP in mip; S-mode only SSIP in sip. */
const MIP_WRITABLE = 0x222n;
const SIP_WRITABLE = 0x2n;
const M64 = (1n << 64n) - 1n;

/** What the CSR file needs from its hart. */
export interface CsrHost {
  readonly state: VcpuState;
  /** Instructions retired so far, including k of the current block. */
  instret(k: number): number;
  /** mtime, 10 MHz. */
  mtime(): number;
  setInstret(v: number, k: number): void;
  /** satp, mstatus and privilege changes invalidate the soft TLB. */
  flushTlb(): void;
  /** mie/mip/mstatus changes may make an interrupt takeable now. */
  interruptsChanged(): void;
}

const slotOf = (num: number): number | undefined => {
  switch (num) {
    case CSR.stvec: return CSR_SLOT.stvec;
    case CSR.scounteren: return CSR_SLOT.scounteren;
    case CSR.senvcfg: return CSR_SLOT.senvcfg;
    case CSR.sscratch: return CSR_SLOT.sscratch;
    case CSR.sepc: return CSR_SLOT.sepc;
    case CSR.scause: return CSR_SLOT.scause;
    case CSR.stval: return CSR_SLOT.stval;
    case CSR.satp: return CSR_SLOT.satp;
    case CSR.medeleg: return CSR_SLOT.medeleg;
    case CSR.mideleg: return CSR_SLOT.mideleg;
    case CSR.mtvec: return CSR_SLOT.mtvec;
    case CSR.mcounteren: return CSR_SLOT.mcounteren;
    case CSR.menvcfg: return CSR_SLOT.menvcfg;
    case CSR.mcountinhibit: return CSR_SLOT.mcountinhibit;
    case CSR.mscratch: return CSR_SLOT.mscratch;
    case CSR.mepc: return CSR_SLOT.mepc;
    case CSR.mcause: return CSR_SLOT.mcause;
    case CSR.mtval: return CSR_SLOT.mtval;
    case CSR.pmpcfg0: return CSR_SLOT.pmpcfg0;
    case CSR.pmpcfg2: return CSR_SLOT.pmpcfg2;
  }
  if (num >= CSR.pmpaddr0 && num < CSR.pmpaddr0 + 16) return CSR_SLOT.pmpaddr0 + (num - CSR.pmpaddr0);
  return undefined;
};

const isHpmCounter = (num: number): boolean => (num >= 0xb03 && num <= 0xb1f) || (num >= 0xc03 && num <= 0xc1f);
const isHpmEvent = (num: number): boolean => num >= 0x323 && num <= 0x33f;

/** May the current privilege read counter `num` (0xC00..0xC1F) per mcounteren/scounteren (§3.1.11)? */
function counterAllowed(h: CsrHost, num: number): boolean {
  const bit = num - 0xc00;
  const priv = h.state.priv;
  if (priv < PRIV.M && ((h.state.csrLo(CSR_SLOT.mcounteren) >>> bit) & 1) === 0) return false;
  if (priv === PRIV.U && ((h.state.csrLo(CSR_SLOT.scounteren) >>> bit) & 1) === 0) return false;
  return true;
}

/** Read a CSR; undefined if it does not exist (or is not accessible this way). */
export function readCsr(h: CsrHost, num: number, k: number): bigint | undefined {
  const s = h.state;
  if (num >= 0xc00 && num <= 0xc1f && !counterAllowed(h, num)) return undefined;
  switch (num) {
    case CSR.sstatus: return sstatusValue(s.csrBig(CSR_SLOT.mstatus));
    case CSR.mstatus: return mstatusValue(s.csrBig(CSR_SLOT.mstatus));
    case CSR.misa: return MISA;
    case CSR.mie: return s.csrBig(CSR_SLOT.mie);
    case CSR.sie: return s.csrBig(CSR_SLOT.mie) & s.csrBig(CSR_SLOT.mideleg);
    case CSR.mip: return BigInt(Atomics.load(s.i32, W.MIP) >>> 0);
    case CSR.sip: return BigInt(Atomics.load(s.i32, W.MIP) >>> 0) & s.csrBig(CSR_SLOT.mideleg);
    case CSR.mcycle: case CSR.minstret: case CSR.cycle: case CSR.instret:
      return BigInt.asUintN(64, BigInt(h.instret(k)));
    case CSR.time: return BigInt(h.mtime());
    case CSR.mvendorid: case CSR.marchid: case CSR.mimpid: case CSR.mconfigptr: return 0n;
    case CSR.mhartid: return BigInt(s.hartid);
  }
  if (isHpmCounter(num) || isHpmEvent(num)) return 0n;
  const slot = slotOf(num);
  return slot === undefined ? undefined : BigInt.asUintN(64, s.csrBig(slot));
}

/** The mstatus value with its read-only fields filled in (SD is 0: no FS/XS state). */
function mstatusValue(raw: bigint): bigint {
  return (raw & MSTATUS_WRITABLE) | MSTATUS_XL;
}
function sstatusValue(raw: bigint): bigint {
  return mstatusValue(raw) & SSTATUS_VISIBLE;
}

/** Write a CSR (after the caller checked it exists and is writable at this privilege). */
export function writeCsr(h: CsrHost, num: number, v: bigint, k: number): void {
  const s = h.state;
  v &= M64;
  switch (num) {
    case CSR.mstatus: {
      const old = s.csrBig(CSR_SLOT.mstatus);
      let next = v & MSTATUS_WRITABLE;
      // MPP is WARL: the reserved value 2 (H) keeps the old field.
      if (((next >> 11n) & 3n) === 2n) next = (next & ~(3n << 11n)) | (old & (3n << 11n));
      s.setCsrBig(CSR_SLOT.mstatus, next);
      h.flushTlb();
      h.interruptsChanged();
      return;
    }
    case CSR.sstatus: {
      const old = s.csrBig(CSR_SLOT.mstatus);
      s.setCsrBig(CSR_SLOT.mstatus, (old & ~SSTATUS_WRITABLE) | (v & SSTATUS_WRITABLE));
      h.flushTlb();
      h.interruptsChanged();
      return;
    }
    case CSR.misa: return; // WARL, fixed
    case CSR.medeleg: s.setCsrBig(CSR_SLOT.medeleg, v & MEDELEG_WRITABLE); return;
    case CSR.mideleg: s.setCsrBig(CSR_SLOT.mideleg, v & MIDELEG_WRITABLE); h.interruptsChanged(); return;
    case CSR.mie: s.setCsrBig(CSR_SLOT.mie, v & MIE_WRITABLE); h.interruptsChanged(); return;
    case CSR.sie: {
      const deleg = s.csrBig(CSR_SLOT.mideleg);
      const old = s.csrBig(CSR_SLOT.mie);
      s.setCsrBig(CSR_SLOT.mie, (old & ~deleg) | (v & deleg & MIE_WRITABLE));
      h.interruptsChanged();
      return;
    }
    case CSR.mip: updateMip(s, MIP_WRITABLE, v); h.interruptsChanged(); return;
    case CSR.sip: updateMip(s, SIP_WRITABLE & s.csrBig(CSR_SLOT.mideleg), v); h.interruptsChanged(); return;
    case CSR.mtvec: s.setCsrBig(CSR_SLOT.mtvec, v & ~2n); return; // modes 2, 3 reserved: keep 0/1
    case CSR.stvec: s.setCsrBig(CSR_SLOT.stvec, v & ~2n); return;
    case CSR.mepc: s.setCsrBig(CSR_SLOT.mepc, v & ~1n); return; // IALIGN = 16
    case CSR.sepc: s.setCsrBig(CSR_SLOT.sepc, v & ~1n); return;
    case CSR.mcounteren: s.setCsrBig(CSR_SLOT.mcounteren, v & 0xffffffffn); return;
    case CSR.scounteren: s.setCsrBig(CSR_SLOT.scounteren, v & 0xffffffffn); return;
    case CSR.menvcfg: case CSR.senvcfg: s.setCsrBig(slotOf(num)!, v & 1n); return; // FIOM only
    case CSR.satp: {
      // Only Bare (0) and Sv39 (8) exist; any other MODE leaves satp unchanged (§4.1.11, WARL).
      const mode = v >> 60n;
      if (mode !== 0n && mode !== 8n) return;
      s.setCsrBig(CSR_SLOT.satp, mode === 0n ? 0n : v & ((0xfn << 60n) | ((1n << 44n) - 1n))); // ASIDLEN = 0
      h.flushTlb();
      return;
    }
    case CSR.mcycle: case CSR.minstret: h.setInstret(Number(v), k); return;
    case CSR.mcountinhibit: s.setCsrBig(CSR_SLOT.mcountinhibit, v & 0xfffffffdn); return;
  }
  if (num >= CSR.pmpaddr0 && num < CSR.pmpaddr0 + 16) { s.setCsrBig(slotOf(num)!, v & ((1n << 54n) - 1n)); return; }
  if (isHpmCounter(num) || isHpmEvent(num)) return; // hardwired to zero
  const slot = slotOf(num);
  if (slot !== undefined) s.setCsrBig(slot, v);
}

function updateMip(s: VcpuState, mask: bigint, v: bigint): void {
  const m = Number(mask);
  const bits = Number(v & mask);
  // Other threads OR in MEIP/MTIP/MSIP concurrently: change only our bits, atomically.
  Atomics.and(s.i32, W.MIP, ~m);
  Atomics.or(s.i32, W.MIP, bits);
}

/**
 * Check an access to CSR `num` at the current privilege: does it exist, is
 * the privilege high enough (bits 9:8), is it writable (bits 11:10 != 3),
 * and mstatus.TVM for satp (§3.1.6.5).
 */
export function csrAccessAllowed(h: CsrHost, num: number, writes: boolean): boolean {
  const priv = h.state.priv;
  if (priv < ((num >>> 8) & 3)) return false;
  if (writes && (num >>> 10) === 3) return false;
  if (num === CSR.satp && priv === PRIV.S && (h.state.csrLo(CSR_SLOT.mstatus) & MSTATUS.TVM) !== 0) return false;
  return true;
}
