/**
 * 64-bit multiply and divide on (lo, hi) int32 pairs, without allocating:
 * the translator emits calls to these for MUL, MULH[SU], DIV[U], REM[U] (RV64M, ISA
 * manual ch. 13).  Results come back as the return value (low word) and
 * HI[0] (high word).  Adds, shifts and compares are emitted inline.
 */

/** The high word of the last result. */
export const HI = new Int32Array(2);

const TWO32 = 4294967296;
/** 16-bit limbs of a and b and the 8 product limbs; module scratch, no per-call allocation. */
const A = new Float64Array(4);
const B = new Float64Array(4);
const P = new Float64Array(8);

/** Full 128-bit unsigned product of a and b into P (16-bit limbs). */
function mulFull(al: number, ah: number, bl: number, bh: number): void {
  A[0] = al & 0xffff; A[1] = al >>> 16; A[2] = ah & 0xffff; A[3] = ah >>> 16;
  B[0] = bl & 0xffff; B[1] = bl >>> 16; B[2] = bh & 0xffff; B[3] = bh >>> 16;
  let carry = 0;
  for (let k = 0; k < 8; k++) {
    let col = carry;
    for (let i = k < 4 ? 0 : k - 3; i <= k && i < 4; i++) col += A[i]! * B[k - i]!;
    P[k] = col % 65536;
    carry = Math.floor(col / 65536);
  }
}

/** MUL: low 64 bits of a*b (same for signed and unsigned). */
export function mul(al: number, ah: number, bl: number, bh: number): number {
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  // High 32 bits of the unsigned 32x32 product al*bl, exactly.
  const mid = ((a0 * b0) >>> 16) + (a0 * b1) % 65536 + (a1 * b0) % 65536;
  const hi32 = a1 * b1 + Math.floor((a0 * b1) / 65536) + Math.floor((a1 * b0) / 65536) + Math.floor(mid / 65536);
  HI[0] = (hi32 + Math.imul(al, bh) + Math.imul(ah, bl)) | 0;
  return Math.imul(al, bl);
}

/** MULHU: high 64 bits of the unsigned 128-bit product. */
export function mulhu(al: number, ah: number, bl: number, bh: number): number {
  mulFull(al, ah, bl, bh);
  HI[0] = (P[6]! + P[7]! * 65536) | 0;
  return (P[4]! + P[5]! * 65536) | 0;
}

/** Subtract the 64-bit value (xl, xh) from the high half held as (lo, HI[0]). */
function subHigh(lo: number, xl: number, xh: number): number {
  const r = (lo - xl) | 0;
  HI[0] = (HI[0]! - xh - ((lo >>> 0) < (xl >>> 0) ? 1 : 0)) | 0;
  return r;
}

/** MULH: signed x signed.  mulh = mulhu - (a<0 ? b : 0) - (b<0 ? a : 0) (mod 2^64). */
export function mulh(al: number, ah: number, bl: number, bh: number): number {
  let lo = mulhu(al, ah, bl, bh);
  if (ah < 0) lo = subHigh(lo, bl, bh);
  if (bh < 0) lo = subHigh(lo, al, ah);
  return lo;
}

/** MULHSU: signed a x unsigned b. */
export function mulhsu(al: number, ah: number, bl: number, bh: number): number {
  let lo = mulhu(al, ah, bl, bh);
  if (ah < 0) lo = subHigh(lo, bl, bh);
  return lo;
}

/** Is the signed 64-bit value exactly representable as a double (|v| < 2^53)? */
function fitsSigned(h: number): boolean {
  return h >= -0x200000 && h < 0x200000;
}

function setResult(q: number): number {
  HI[0] = Math.floor(q / TWO32) | 0;
  return q | 0; // ToInt32 is exact modulo 2^32 for any integral double
}

function big(l: number, h: number): bigint {
  return (BigInt(h) << 32n) | BigInt(l >>> 0);
}
function setBig(v: bigint): number {
  HI[0] = Number(BigInt.asIntN(32, v >> 32n));
  return Number(BigInt.asIntN(32, v));
}

/**
 * DIV / REM (signed).  x/0 = -1 and x%0 = x; the overflow case
 * -2^63 / -1 = -2^63, remainder 0 (ISA manual §13.2, table 13.1).
 * Operands below 2^53 take the exact double path: r = a % b is exact, so is
 * (a - r) / b.  Larger ones fall back to BigInt (rare).
 */
export function div(al: number, ah: number, bl: number, bh: number): number {
  if (bl === 0 && bh === 0) { HI[0] = -1; return -1; }
  if (fitsSigned(ah) && fitsSigned(bh)) {
    const a = ah * TWO32 + (al >>> 0), b = bh * TWO32 + (bl >>> 0);
    return setResult((a - (a % b)) / b);
  }
  return setBig(BigInt.asIntN(64, big(al, ah) / big(bl, bh)));
}

export function rem(al: number, ah: number, bl: number, bh: number): number {
  if (bl === 0 && bh === 0) { HI[0] = ah; return al; }
  if (fitsSigned(ah) && fitsSigned(bh)) {
    const a = ah * TWO32 + (al >>> 0), b = bh * TWO32 + (bl >>> 0);
    return setResult(a % b);
  }
  return setBig(big(al, ah) % big(bl, bh));
}

function fitsUnsigned(h: number): boolean {
  return h >>> 0 < 0x200000;
}

/** DIVU: x/0 = 2^64-1. */
export function divu(al: number, ah: number, bl: number, bh: number): number {
  if (bl === 0 && bh === 0) { HI[0] = -1; return -1; }
  if (fitsUnsigned(ah) && fitsUnsigned(bh)) {
    const a = (ah >>> 0) * TWO32 + (al >>> 0), b = (bh >>> 0) * TWO32 + (bl >>> 0);
    return setResult((a - (a % b)) / b);
  }
  return setBig(BigInt.asUintN(64, big(al, ah)) / BigInt.asUintN(64, big(bl, bh)));
}

/** REMU: x%0 = x. */
export function remu(al: number, ah: number, bl: number, bh: number): number {
  if (bl === 0 && bh === 0) { HI[0] = ah; return al; }
  if (fitsUnsigned(ah) && fitsUnsigned(bh)) {
    const a = (ah >>> 0) * TWO32 + (al >>> 0), b = (bh >>> 0) * TWO32 + (bl >>> 0);
    return setResult(a % b);
  }
  return setBig(BigInt.asUintN(64, big(al, ah)) % BigInt.asUintN(64, big(bl, bh)));
}
