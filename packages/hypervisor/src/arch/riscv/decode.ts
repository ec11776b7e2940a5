/**
 * Instruction fields and the RVC expander.  Every compressed instruction is
 * expanded to the 32-bit instruction it stands for (ISA manual ch. 16, "RVC
 * instruction set listings"), so the translator has one decoder; the caller
 * keeps the length (2) for the next-PC and link values and the original bits
 * for mtval.
 */

export const rd = (i: number): number => (i >>> 7) & 31;
export const rs1 = (i: number): number => (i >>> 15) & 31;
export const rs2 = (i: number): number => (i >>> 20) & 31;
export const funct3 = (i: number): number => (i >>> 12) & 7;
export const funct7 = (i: number): number => i >>> 25;
export const immI = (i: number): number => i >> 20;
export const immS = (i: number): number => ((i >> 25) << 5) | ((i >>> 7) & 31);
export const immB = (i: number): number =>
  ((i >> 31) << 12) | (((i >>> 7) & 1) << 11) | (((i >>> 25) & 63) << 5) | (((i >>> 8) & 15) << 1);
export const immU = (i: number): number => i & 0xfffff000;
export const immJ = (i: number): number =>
  ((i >> 31) << 20) | (((i >>> 12) & 255) << 12) | (((i >>> 20) & 1) << 11) | (((i >>> 21) & 1023) << 1);

/** Is this 16-bit parcel the start of a 32-bit instruction (low bits 11)? */
export const isWide = (h: number): boolean => (h & 3) === 3;

/** Marker for an illegal or reserved compressed encoding. */
export const ILLEGAL = -1;

// 32-bit encoders used by the expander.
const encI = (op: number, f3: number, d: number, s1: number, imm: number): number =>
  ((imm << 20) | (s1 << 15) | (f3 << 12) | (d << 7) | op) | 0;
const encS = (op: number, f3: number, s1: number, s2: number, imm: number): number =>
  (((imm >> 5) << 25) | (s2 << 20) | (s1 << 15) | (f3 << 12) | ((imm & 31) << 7) | op) | 0;
const encR = (op: number, f3: number, f7: number, d: number, s1: number, s2: number): number =>
  ((f7 << 25) | (s2 << 20) | (s1 << 15) | (f3 << 12) | (d << 7) | op) | 0;
const encB = (f3: number, s1: number, s2: number, imm: number): number =>
  ((((imm >> 12) & 1) << 31) | (((imm >> 5) & 63) << 25) | (s2 << 20) | (s1 << 15) | (f3 << 12) |
    (((imm >> 1) & 15) << 8) | (((imm >> 11) & 1) << 7) | 0x63) | 0;
const encJ = (d: number, imm: number): number =>
  ((((imm >> 20) & 1) << 31) | (((imm >> 1) & 1023) << 21) | (((imm >> 11) & 1) << 20) | (((imm >> 12) & 255) << 12) |
    (d << 7) | 0x6f) | 0;

const sext = (v: number, bits: number): number => (v << (32 - bits)) >> (32 - bits);
/** The 3-bit register fields of CIW/CL/CS/CA/CB formats name x8..x15. */
const r3 = (v: number): number => (v & 7) + 8;

/** CI-format 6-bit immediate: imm[5] = bit 12, imm[4:0] = bits 6:2. */
const ciImm = (h: number): number => sext(((h >>> 7) & 0x20) | ((h >>> 2) & 0x1f), 6);
const clwImm = (h: number): number => ((h >>> 7) & 0x38) | ((h << 1) & 0x40) | ((h >>> 4) & 0x4);
const cldImm = (h: number): number => ((h >>> 7) & 0x38) | ((h << 1) & 0xc0);
const cjImm = (h: number): number =>
  sext(((h >>> 1) & 0x800) | ((h >>> 7) & 0x10) | ((h >>> 1) & 0x300) | ((h << 2) & 0x400) |
    ((h >>> 1) & 0x40) | ((h << 1) & 0x80) | ((h >>> 2) & 0xe) | ((h << 3) & 0x20), 12);
const cbImm = (h: number): number =>
  sext(((h >>> 4) & 0x100) | ((h >>> 7) & 0x18) | ((h << 1) & 0xc0) | ((h >>> 2) & 0x6) | ((h << 3) & 0x20), 9);

/**
 * Expand a 16-bit RVC instruction (RV64C) to its 32-bit equivalent, or
 * ILLEGAL for reserved encodings and for the F/D forms (no FPU here).
 * HINT encodings (e.g. c.nop with imm, c.li x0) expand to harmless writes of x0.
 */
export function expandCompressed(h: number): number {
  const f3 = (h >>> 13) & 7;
  const bigRd = (h >>> 7) & 31;
  const bigRs2 = (h >>> 2) & 31;
  switch (h & 3) {
    case 0:
      switch (f3) {
        case 0: { // c.addi4spn
          const imm = ((h >>> 7) & 0x30) | ((h >>> 1) & 0x3c0) | ((h >>> 4) & 0x4) | ((h >>> 2) & 0x8);
          return imm === 0 ? ILLEGAL : encI(0x13, 0, r3(h >>> 2), 2, imm);
        }
        case 2: return encI(0x03, 2, r3(h >>> 2), r3(h >>> 7), clwImm(h)); // c.lw
        case 3: return encI(0x03, 3, r3(h >>> 2), r3(h >>> 7), cldImm(h)); // c.ld
        case 6: return encS(0x23, 2, r3(h >>> 7), r3(h >>> 2), clwImm(h)); // c.sw
        case 7: return encS(0x23, 3, r3(h >>> 7), r3(h >>> 2), cldImm(h)); // c.sd
        default: return ILLEGAL; // c.fld, reserved, c.fsd
      }
    case 1:
      switch (f3) {
        case 0: return encI(0x13, 0, bigRd, bigRd, ciImm(h)); // c.addi / c.nop
        case 1: return bigRd === 0 ? ILLEGAL : encI(0x1b, 0, bigRd, bigRd, ciImm(h)); // c.addiw
        case 2: return encI(0x13, 0, bigRd, 0, ciImm(h)); // c.li
        case 3: {
          if (bigRd === 2) { // c.addi16sp
            const imm = sext(((h >>> 3) & 0x200) | ((h >>> 2) & 0x10) | ((h << 1) & 0x40) | ((h << 4) & 0x180) | ((h << 3) & 0x20), 10);
            return imm === 0 ? ILLEGAL : encI(0x13, 0, 2, 2, imm);
          }
          const imm = ciImm(h); // c.lui: nzimm[17:12]
          return imm === 0 ? ILLEGAL : (((imm << 12) | (bigRd << 7) | 0x37) | 0);
        }
        case 4: {
          const d = r3(h >>> 7);
          const shamt = ((h >>> 7) & 0x20) | ((h >>> 2) & 0x1f);
          switch ((h >>> 10) & 3) {
            case 0: return encI(0x13, 5, d, d, shamt); // c.srli
            case 1: return encI(0x13, 5, d, d, shamt | 0x400); // c.srai
            case 2: return encI(0x13, 7, d, d, ciImm(h)); // c.andi
            default: {
              const s2 = r3(h >>> 2);
              const sel = (h >>> 5) & 3;
              if ((h & 0x1000) === 0) {
                return [encR(0x33, 0, 0x20, d, d, s2), encR(0x33, 4, 0, d, d, s2), encR(0x33, 6, 0, d, d, s2), encR(0x33, 7, 0, d, d, s2)][sel]!;
              }
              if (sel === 0) return encR(0x3b, 0, 0x20, d, d, s2); // c.subw
              if (sel === 1) return encR(0x3b, 0, 0, d, d, s2); // c.addw
              return ILLEGAL;
            }
          }
        }
        case 5: return encJ(0, cjImm(h)); // c.j
        case 6: return encB(0, r3(h >>> 7), 0, cbImm(h)); // c.beqz
        default: return encB(1, r3(h >>> 7), 0, cbImm(h)); // c.bnez
      }
    case 2:
      switch (f3) {
        case 0: return encI(0x13, 1, bigRd, bigRd, ((h >>> 7) & 0x20) | ((h >>> 2) & 0x1f)); // c.slli
        case 2: { // c.lwsp
          const imm = ((h >>> 7) & 0x20) | ((h >>> 2) & 0x1c) | ((h << 4) & 0xc0);
          return bigRd === 0 ? ILLEGAL : encI(0x03, 2, bigRd, 2, imm);
        }
        case 3: { // c.ldsp
          const imm = ((h >>> 7) & 0x20) | ((h >>> 2) & 0x18) | ((h << 4) & 0x1c0);
          return bigRd === 0 ? ILLEGAL : encI(0x03, 3, bigRd, 2, imm);
        }
        case 4:
          if ((h & 0x1000) === 0) {
            if (bigRs2 === 0) return bigRd === 0 ? ILLEGAL : encI(0x67, 0, 0, bigRd, 0); // c.jr
            return encR(0x33, 0, 0, bigRd, 0, bigRs2); // c.mv
          }
          if (bigRs2 === 0) {
            if (bigRd === 0) return 0x00100073; // c.ebreak
            return encI(0x67, 0, 1, bigRd, 0); // c.jalr
          }
          return encR(0x33, 0, 0, bigRd, bigRd, bigRs2); // c.add
        case 6: return encS(0x23, 2, 2, bigRs2, ((h >>> 7) & 0x3c) | ((h >>> 1) & 0xc0)); // c.swsp
        case 7: return encS(0x23, 3, 2, bigRs2, ((h >>> 7) & 0x38) | ((h >>> 1) & 0x1c0)); // c.sdsp
        default: return ILLEGAL; // c.fldsp, c.fsdsp
      }
    default:
      return ILLEGAL;
  }
}

/** Instructions per block at most (translated and interpreted blocks end at the same places). */
export const MAX_BLOCK = 64;

/** Outcome of one instruction of a block, decided by its translator or interpreter decoder. */
export const enum Step {
  CONTINUE,
  END,
  ILLEGAL,
}

/** Where a block scan stopped. */
export interface BlockScan {
  /** Instructions in the block (an illegal one included). */
  count: number;
  /** Byte offset from the block start just past the last instruction. */
  end: number;
  /** True when the block runs off its end (page end, MAX_BLOCK) rather than ending in a jump, branch, system or illegal instruction. */
  fallthrough: boolean;
}

/**
 * Walk the instructions of one block, the same way for the translator and
 * the interpreter, so both end blocks at the same places.  `fetch16(i)`
 * returns the 16-bit parcel at byte offset 2*i from the block start within
 * the same page, or -1 past the page end.  `first32` (if given) is the first
 * instruction when the hart fetched it across a page boundary; such a block
 * holds only it.  `visit` sees each instruction expanded to 32 bits with its
 * length and byte offset `pc` and the number `k` of instructions before it;
 * `illegal` sees the original bits of an undecodable one (mtval, priv spec
 * §3.1.16: 16 bits for RVC), which ends the block.
 */
export function scanBlock(
  fetch16: (index: number) => number,
  first32: number | undefined,
  visit: (inst: number, len: number, pc: number, k: number) => Step,
  illegal: (raw: number, pc: number, k: number) => void,
): BlockScan {
  let count = 0;
  let offset = 0; // in parcels
  let cur = 0; // byte offset of the current instruction from the block start
  for (;;) {
    let raw: number;
    let len: number;
    if (count === 0 && first32 !== undefined) {
      raw = first32;
      len = 4;
    } else {
      const lo = fetch16(offset);
      if (lo < 0) break;
      if (isWide(lo)) {
        const hi = fetch16(offset + 1);
        if (hi < 0) break; // straddles the page: the hart fetches it as its own block
        raw = (lo | (hi << 16)) | 0;
        len = 4;
      } else {
        raw = lo;
        len = 2;
      }
    }
    const inst = len === 2 ? expandCompressed(raw) : raw;
    // 32-bit encodings with bits [4:2] = 111 are longer instructions (>= 48 bits): illegal here.
    const step = inst === ILLEGAL || (len === 4 && (inst & 0x1c) === 0x1c) ? Step.ILLEGAL : visit(inst, len, cur, count);
    if (step === Step.ILLEGAL) {
      illegal(raw, cur, count);
      return { count: count + 1, end: cur + len, fallthrough: false };
    }
    count++;
    offset += len >> 1;
    cur += len;
    if (step === Step.END) return { count, end: cur, fallthrough: false };
    if (count >= MAX_BLOCK || first32 !== undefined) break;
  }
  return { count, end: cur, fallthrough: true };
}
