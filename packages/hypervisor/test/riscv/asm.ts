/**
 * A tiny RV64IMAC assembler for the tests: each function returns the
 * machine-code parcels of one instruction (a 32-bit word, or a 16-bit
 * parcel for compressed forms), so tests run real machine code.
 * Encodings from the ISA manual, chapter 34 ("RV32/64G Instruction Set Listings")
 * and chapter 16 (RVC).  Written independently of src/arch/riscv/decode.ts.
 */

/** One instruction: 32-bit words are numbers, 16-bit RVC parcels are tagged. */
export type Insn = number | { c: number };
export type Program = (Insn | Insn[])[];

export const zero = 0, ra = 1, sp = 2, gp = 3, tp = 4, t0 = 5, t1 = 6, t2 = 7, s0 = 8, s1 = 9;
export const a0 = 10, a1 = 11, a2 = 12, a3 = 13, a4 = 14, a5 = 15, a6 = 16, a7 = 17;
export const s2 = 18, s3 = 19, t3 = 28, t4 = 29, t5 = 30, t6 = 31;

const R = (op: number, f3: number, f7: number, rd: number, rs1: number, rs2: number): number =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const I = (op: number, f3: number, rd: number, rs1: number, imm: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const S = (op: number, f3: number, rs1: number, rs2: number, imm: number): number =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | op) >>> 0;
const B = (f3: number, rs1: number, rs2: number, imm: number): number =>
  ((((imm >> 12) & 1) << 31) | (((imm >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (((imm >> 1) & 0xf) << 8) | (((imm >> 11) & 1) << 7) | 0x63) >>> 0;
const U = (op: number, rd: number, imm20: number): number => (((imm20 & 0xfffff) << 12) | (rd << 7) | op) >>> 0;
const J = (rd: number, imm: number): number =>
  ((((imm >> 20) & 1) << 31) | (((imm >> 1) & 0x3ff) << 21) | (((imm >> 11) & 1) << 20) | (((imm >> 12) & 0xff) << 12) |
    (rd << 7) | 0x6f) >>> 0;

// RV64I
export const lui = (rd: number, imm20: number) => U(0x37, rd, imm20);
export const auipc = (rd: number, imm20: number) => U(0x17, rd, imm20);
export const jal = (rd: number, off: number) => J(rd, off);
export const jalr = (rd: number, rs1: number, off: number) => I(0x67, 0, rd, rs1, off);
export const beq = (a: number, b: number, off: number) => B(0, a, b, off);
export const bne = (a: number, b: number, off: number) => B(1, a, b, off);
export const blt = (a: number, b: number, off: number) => B(4, a, b, off);
export const bge = (a: number, b: number, off: number) => B(5, a, b, off);
export const bltu = (a: number, b: number, off: number) => B(6, a, b, off);
export const bgeu = (a: number, b: number, off: number) => B(7, a, b, off);
export const lb = (rd: number, rs1: number, off: number) => I(0x03, 0, rd, rs1, off);
export const lh = (rd: number, rs1: number, off: number) => I(0x03, 1, rd, rs1, off);
export const lw = (rd: number, rs1: number, off: number) => I(0x03, 2, rd, rs1, off);
export const ld = (rd: number, rs1: number, off: number) => I(0x03, 3, rd, rs1, off);
export const lbu = (rd: number, rs1: number, off: number) => I(0x03, 4, rd, rs1, off);
export const lhu = (rd: number, rs1: number, off: number) => I(0x03, 5, rd, rs1, off);
export const lwu = (rd: number, rs1: number, off: number) => I(0x03, 6, rd, rs1, off);
export const sb = (rs2: number, rs1: number, off: number) => S(0x23, 0, rs1, rs2, off);
export const sh = (rs2: number, rs1: number, off: number) => S(0x23, 1, rs1, rs2, off);
export const sw = (rs2: number, rs1: number, off: number) => S(0x23, 2, rs1, rs2, off);
export const sd = (rs2: number, rs1: number, off: number) => S(0x23, 3, rs1, rs2, off);
export const addi = (rd: number, rs1: number, imm: number) => I(0x13, 0, rd, rs1, imm);
export const slti = (rd: number, rs1: number, imm: number) => I(0x13, 2, rd, rs1, imm);
export const sltiu = (rd: number, rs1: number, imm: number) => I(0x13, 3, rd, rs1, imm);
export const xori = (rd: number, rs1: number, imm: number) => I(0x13, 4, rd, rs1, imm);
export const ori = (rd: number, rs1: number, imm: number) => I(0x13, 6, rd, rs1, imm);
export const andi = (rd: number, rs1: number, imm: number) => I(0x13, 7, rd, rs1, imm);
export const slli = (rd: number, rs1: number, sh: number) => I(0x13, 1, rd, rs1, sh & 63);
export const srli = (rd: number, rs1: number, sh: number) => I(0x13, 5, rd, rs1, sh & 63);
export const srai = (rd: number, rs1: number, sh: number) => I(0x13, 5, rd, rs1, 0x400 | (sh & 63));
export const add = (rd: number, a: number, b: number) => R(0x33, 0, 0, rd, a, b);
export const sub = (rd: number, a: number, b: number) => R(0x33, 0, 0x20, rd, a, b);
export const sll = (rd: number, a: number, b: number) => R(0x33, 1, 0, rd, a, b);
export const slt = (rd: number, a: number, b: number) => R(0x33, 2, 0, rd, a, b);
export const sltu = (rd: number, a: number, b: number) => R(0x33, 3, 0, rd, a, b);
export const xor = (rd: number, a: number, b: number) => R(0x33, 4, 0, rd, a, b);
export const srl = (rd: number, a: number, b: number) => R(0x33, 5, 0, rd, a, b);
export const sra = (rd: number, a: number, b: number) => R(0x33, 5, 0x20, rd, a, b);
export const or = (rd: number, a: number, b: number) => R(0x33, 6, 0, rd, a, b);
export const and = (rd: number, a: number, b: number) => R(0x33, 7, 0, rd, a, b);
export const addiw = (rd: number, rs1: number, imm: number) => I(0x1b, 0, rd, rs1, imm);
export const slliw = (rd: number, rs1: number, sh: number) => I(0x1b, 1, rd, rs1, sh & 31);
export const srliw = (rd: number, rs1: number, sh: number) => I(0x1b, 5, rd, rs1, sh & 31);
export const sraiw = (rd: number, rs1: number, sh: number) => I(0x1b, 5, rd, rs1, 0x400 | (sh & 31));
export const addw = (rd: number, a: number, b: number) => R(0x3b, 0, 0, rd, a, b);
export const subw = (rd: number, a: number, b: number) => R(0x3b, 0, 0x20, rd, a, b);
export const sllw = (rd: number, a: number, b: number) => R(0x3b, 1, 0, rd, a, b);
export const srlw = (rd: number, a: number, b: number) => R(0x3b, 5, 0, rd, a, b);
export const sraw = (rd: number, a: number, b: number) => R(0x3b, 5, 0x20, rd, a, b);
export const fence = () => 0x0ff0000f;
export const fence_i = () => 0x0000100f;
export const ecall = () => 0x00000073;
export const ebreak = () => 0x00100073;
export const mret = () => 0x30200073;
export const sret = () => 0x10200073;
export const wfi = () => 0x10500073;
export const sfence_vma = (rs1 = 0, rs2 = 0) => R(0x73, 0, 0x09, 0, rs1, rs2);
// Zicsr
export const csrrw = (rd: number, csr: number, rs1: number) => I(0x73, 1, rd, rs1, csr);
export const csrrs = (rd: number, csr: number, rs1: number) => I(0x73, 2, rd, rs1, csr);
export const csrrc = (rd: number, csr: number, rs1: number) => I(0x73, 3, rd, rs1, csr);
export const csrrwi = (rd: number, csr: number, uimm: number) => I(0x73, 5, rd, uimm, csr);
export const csrrsi = (rd: number, csr: number, uimm: number) => I(0x73, 6, rd, uimm, csr);
export const csrrci = (rd: number, csr: number, uimm: number) => I(0x73, 7, rd, uimm, csr);
export const csrr = (rd: number, csr: number) => csrrs(rd, csr, 0);
export const csrw = (csr: number, rs1: number) => csrrw(0, csr, rs1);
// RV64M
const M = (f3: number, rd: number, a: number, b: number) => R(0x33, f3, 1, rd, a, b);
const MW = (f3: number, rd: number, a: number, b: number) => R(0x3b, f3, 1, rd, a, b);
export const mul = (rd: number, a: number, b: number) => M(0, rd, a, b);
export const mulh = (rd: number, a: number, b: number) => M(1, rd, a, b);
export const mulhsu = (rd: number, a: number, b: number) => M(2, rd, a, b);
export const mulhu = (rd: number, a: number, b: number) => M(3, rd, a, b);
export const div = (rd: number, a: number, b: number) => M(4, rd, a, b);
export const divu = (rd: number, a: number, b: number) => M(5, rd, a, b);
export const rem = (rd: number, a: number, b: number) => M(6, rd, a, b);
export const remu = (rd: number, a: number, b: number) => M(7, rd, a, b);
export const mulw = (rd: number, a: number, b: number) => MW(0, rd, a, b);
export const divw = (rd: number, a: number, b: number) => MW(4, rd, a, b);
export const divuw = (rd: number, a: number, b: number) => MW(5, rd, a, b);
export const remw = (rd: number, a: number, b: number) => MW(6, rd, a, b);
export const remuw = (rd: number, a: number, b: number) => MW(7, rd, a, b);
// RV64A: funct5 per table 8.2; width 2 = .W, 3 = .D
export const AMO = { add: 0, swap: 1, lr: 2, sc: 3, xor: 4, or: 8, and: 12, min: 16, max: 20, minu: 24, maxu: 28 } as const;
export const amo = (op: keyof typeof AMO, width: 'w' | 'd', rd: number, rs1: number, rs2 = 0, aq = 0, rl = 0) =>
  R(0x2f, width === 'w' ? 2 : 3, (AMO[op] << 2) | (aq << 1) | rl, rd, rs1, rs2);

/** li: load any 64-bit constant (lui/addiw, or shifts for wide values). */
export function li(rd: number, value: bigint | number): number[] {
  const v = BigInt.asIntN(64, BigInt(value));
  if (v >= -2048n && v < 2048n) return [addi(rd, 0, Number(v))];
  if (v >= -(1n << 31n) && v < 1n << 31n) {
    const lo = Number(BigInt.asIntN(12, v));
    const hi = Number(BigInt.asUintN(20, (v - BigInt(lo)) >> 12n));
    return lo === 0 ? [lui(rd, hi)] : [lui(rd, hi), addiw(rd, rd, lo)];
  }
  const lo = Number(BigInt.asIntN(12, v));
  const upper = (v - BigInt(lo)) >> 12n;
  return [...li(rd, upper), slli(rd, rd, 12), ...(lo ? [addi(rd, rd, lo)] : [])];
}

/** A raw 16-bit compressed parcel. */
export const c = (parcel: number): Insn => ({ c: parcel & 0xffff });

/** Machine code bytes of a program (little-endian). */
export function assemble(prog: Program): Uint8Array {
  const out: number[] = [];
  for (const item of prog.flat()) {
    if (typeof item === 'number') out.push(item & 0xff, (item >>> 8) & 0xff, (item >>> 16) & 0xff, (item >>> 24) & 0xff);
    else out.push(item.c & 0xff, item.c >>> 8);
  }
  return Uint8Array.from(out);
}

/** Size in bytes of a program (for computing branch offsets). */
export const sizeOf = (prog: Program): number => assemble(prog).length;
