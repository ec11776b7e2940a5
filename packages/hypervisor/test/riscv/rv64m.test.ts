import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { a0, a1, a2, li } from './asm.js';
import { exec } from './harness.js';

const u = (v: bigint): bigint => BigInt.asUintN(64, v);
const s = (v: bigint): bigint => BigInt.asIntN(64, v);
const MIN64 = -(2n ** 63n);
const MIN32 = -(2n ** 31n);

function rr(op: (rd: number, a: number, b: number) => number, x: bigint, y: bigint): bigint {
  return exec([li(a1, x), li(a2, y), op(a0, a1, a2)]).x(a0);
}

/** Reference semantics straight from the ISA manual (§13.1, §13.2, table 13.1), in bigint. */
const ref = {
  mul: (x: bigint, y: bigint) => u(x * y),
  mulh: (x: bigint, y: bigint) => u((s(x) * s(y)) >> 64n),
  mulhu: (x: bigint, y: bigint) => u((u(x) * u(y)) >> 64n),
  mulhsu: (x: bigint, y: bigint) => u((s(x) * u(y)) >> 64n),
  div: (x: bigint, y: bigint) => (y === 0n ? u(-1n) : s(x) === MIN64 && s(y) === -1n ? u(MIN64) : u(s(x) / s(y))),
  divu: (x: bigint, y: bigint) => (y === 0n ? u(-1n) : u(x) / u(y)),
  rem: (x: bigint, y: bigint) => (y === 0n ? u(x) : s(x) === MIN64 && s(y) === -1n ? 0n : u(s(x) % s(y))),
  remu: (x: bigint, y: bigint) => (y === 0n ? u(x) : u(x) % u(y)),
};

const values = [0n, 1n, -1n, 2n, -2n, 7n, -7n, 3n, 0x7fff_ffffn, MIN32, 0xffff_ffffn, 0x1_0000_0000n,
  0x1234_5678_9abc_def0n, MIN64, 2n ** 63n - 1n, 0xdead_beef_cafe_f00dn, 1n << 52n, (1n << 53n) + 1n, -(1n << 53n) - 3n];

describe('RV64M 64-bit multiply and divide', () => {
  for (const name of Object.keys(ref) as (keyof typeof ref)[]) {
    it(`${name} matches the ISA manual over signed/unsigned corner values`, () => {
      // one program per operation: all pairs computed in a loop of straight-line code
      const pairs = values.flatMap((x) => [values[0]!, values[2]!, values[5]!, values[13]!, values[14]!, values[11]!, values[17]!].map((y) => [x, y] as const));
      for (const [x, y] of pairs) expect(rr(A[name], x, y), `${name}(${x}, ${y})`).toBe(ref[name](u(x), u(y)));
    });
  }

  it('division by zero gives all ones (quotient) and the dividend (remainder)', () => {
    expect(rr(A.div, 5n, 0n)).toBe(u(-1n));
    expect(rr(A.divu, 5n, 0n)).toBe(u(-1n));
    expect(rr(A.rem, -5n, 0n)).toBe(u(-5n));
    expect(rr(A.remu, 5n, 0n)).toBe(5n);
  });

  it('signed overflow (-2^63 / -1) gives -2^63 with remainder 0', () => {
    expect(rr(A.div, MIN64, -1n)).toBe(u(MIN64));
    expect(rr(A.rem, MIN64, -1n)).toBe(0n);
  });

  it('remainders take the sign of the dividend', () => {
    expect(rr(A.rem, -7n, 2n)).toBe(u(-1n));
    expect(rr(A.rem, 7n, -2n)).toBe(1n);
    expect(rr(A.div, -7n, 2n)).toBe(u(-3n));
  });
});

describe('RV64M W forms', () => {
  it('mulw multiplies the low 32 bits and sign-extends', () => {
    expect(rr(A.mulw, 0x1_0000_0003n, 0x5_0000_0007n)).toBe(21n);
    expect(rr(A.mulw, 0x10000n, 0x8000n)).toBe(u(MIN32));
    expect(rr(A.mulw, 0xffff_ffffn, 0xffff_ffffn)).toBe(1n);
  });

  it('divw/divuw/remw/remuw: by zero, overflow and sign extension of 32-bit results', () => {
    expect(rr(A.divw, 7n, 0n)).toBe(u(-1n));
    expect(rr(A.divuw, 7n, 0n)).toBe(u(-1n));
    expect(rr(A.remw, 0x1_8000_0000n, 0n)).toBe(u(MIN32)); // the 32-bit dividend, sign-extended
    expect(rr(A.remuw, 0x1_0000_0007n, 0n)).toBe(7n);
    expect(rr(A.divw, MIN32, -1n)).toBe(u(MIN32));
    expect(rr(A.remw, MIN32, -1n)).toBe(0n);
    expect(rr(A.divuw, 0xffff_fffen, 1n)).toBe(u(-2n)); // 0xfffffffe sign-extended
    expect(rr(A.divuw, 0x1_0000_0010n, 4n)).toBe(4n); // upper bits ignored
    expect(rr(A.remuw, 0xffff_ffffn, 0x10n)).toBe(15n);
    expect(rr(A.divw, -9n, 2n)).toBe(u(-4n));
    expect(rr(A.remw, -9n, 2n)).toBe(u(-1n));
  });
});
