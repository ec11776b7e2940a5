/**
 * Address translation: Bare and Sv39 (privileged spec 1.12, §4.3 and §4.4),
 * with hardware A/D updates done as atomic compare-and-swap on the PTE in
 * the shared RAM (§4.3.2 step 7, so two vCPU threads never lose an update).
 *
 * Numbers, not bigints: a virtual address arrives as (lo, hi) int32 words,
 * a physical address leaves as a double (exact below 2^53; Sv39 PAs are 56 bits
 * but RAM and MMIO live far below 2^53).
 */
import type { GuestRam } from './memory.js';

export const enum Access {
  FETCH = 0,
  LOAD = 1,
  STORE = 2,
}

/** Exception causes for a failed translation, per access type (priv spec table 3.6). */
export const PAGE_FAULT_CAUSE = [12, 13, 15] as const;
export const ACCESS_FAULT_CAUSE = [1, 5, 7] as const;

export const PTE_V = 1, PTE_R = 2, PTE_W = 4, PTE_X = 8, PTE_U = 16, PTE_A = 64, PTE_D = 128;

/** mstatus bits the walk looks at. */
export const MSTATUS_SUM = 1 << 18;
export const MSTATUS_MXR = 1 << 19;

const TWO32 = 4294967296;

export interface WalkContext {
  ram: GuestRam;
  /** satp as (lo, hi). */
  satpLo: number;
  satpHi: number;
  /** Effective privilege of the access (MPRV applied by the caller). */
  priv: number;
  mstatusLo: number;
}

/** Result of a walk: a physical address >= 0, or -(cause + 1) for a fault. */
export type WalkResult = number;

/** satp.MODE (bits 63:60). */
export const satpMode = (satpHi: number): number => satpHi >>> 28;

/** Translate a virtual address through Sv39 page tables. */
export function walkSv39(ctx: WalkContext, lo: number, hi: number, access: Access): WalkResult {
  const pageFault = -(PAGE_FAULT_CAUSE[access] + 1);
  // Bits 63:39 must all equal bit 38 (§4.4.1), else a page fault.
  if (((hi << 25) >> 25) !== hi) return pageFault;
  const vpn = [(lo >>> 12) & 0x1ff, (lo >>> 21) & 0x1ff, ((hi & 0x7f) << 2) | (lo >>> 30)];
  const i32 = ctx.ram.i32;
  let table = ((ctx.satpLo >>> 0) + (ctx.satpHi & 0xfff) * TWO32) * 4096;
  for (let level = 2; level >= 0; level--) {
    const pteAddr = table + vpn[level]! * 8;
    const off = ctx.ram.offsetOf(pteAddr, 8);
    if (off < 0) return -(ACCESS_FAULT_CAUSE[access] + 1);
    const idx = off >> 2;
    let pteLo = Atomics.load(i32, idx);
    const pteHi = Atomics.load(i32, idx + 1);
    // Reserved bits 63:54 (N, PBMT: no Svnapot/Svpbmt here) must be zero (§4.4.1).
    if ((pteLo & PTE_V) === 0 || ((pteLo & PTE_R) === 0 && (pteLo & PTE_W) !== 0) || pteHi >>> 22 !== 0) return pageFault;
    const ppn = (pteLo >>> 10) + (pteHi & 0x3fffff) * 4194304;
    if ((pteLo & (PTE_R | PTE_X)) === 0) {
      if (level === 0) return pageFault;
      table = ppn * 4096;
      continue;
    }
    if (!leafAllows(ctx, pteLo, access)) return pageFault;
    // A superpage's PPN must be aligned to its size (§4.3.2 step 6).
    const lowPpn = level === 2 ? ppn % 262144 : level === 1 ? ppn % 512 : 0;
    if (lowPpn !== 0) return pageFault;
    // Set A, and D for stores, atomically; if the PTE changed under us, walk again.
    const want = pteLo | PTE_A | (access === Access.STORE ? PTE_D : 0);
    if (want !== pteLo) {
      if (Atomics.compareExchange(i32, idx, pteLo, want) !== pteLo) return walkSv39(ctx, lo, hi, access);
      pteLo = want;
    }
    const page = level === 2 ? ppn + vpn[1]! * 512 + vpn[0]! : level === 1 ? ppn + vpn[0]! : ppn;
    return page * 4096 + (lo & 0xfff);
  }
  return pageFault;
}

/** Leaf PTE permission check (§4.3.1, §3.1.6.3 for SUM and MXR). */
function leafAllows(ctx: WalkContext, pte: number, access: Access): boolean {
  const user = (pte & PTE_U) !== 0;
  if (ctx.priv === 0 && !user) return false;
  if (ctx.priv === 1 && user && (access === Access.FETCH || (ctx.mstatusLo & MSTATUS_SUM) === 0)) return false;
  switch (access) {
    case Access.FETCH:
      return (pte & PTE_X) !== 0;
    case Access.LOAD:
      return (pte & PTE_R) !== 0 || ((ctx.mstatusLo & MSTATUS_MXR) !== 0 && (pte & PTE_X) !== 0);
    default:
      return (pte & PTE_W) !== 0;
  }
}
