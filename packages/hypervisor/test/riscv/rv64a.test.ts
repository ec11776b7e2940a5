import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { a0, a1, a2, a3, li, t0 } from './asm.js';
import { DATA, exec } from './harness.js';

const u = (v: bigint): bigint => BigInt.asUintN(64, v);
const HANDLER = 0x8000_1000;
const trapOpts = { load: [[HANDLER, A.assemble([A.wfi()])] as [number, Uint8Array]] };
const withTrap = (body: A.Program): A.Program => [li(t0, HANDLER), A.csrw(0x305, t0), ...body];

/** amo<op>.<w|d> a0, a2, (a1) with memory = mem, returns [a0 (old), memory after]. */
function amo(op: keyof typeof A.AMO, width: 'w' | 'd', mem: bigint, src: bigint): [bigint, bigint] {
  const m = exec([li(a1, DATA), li(a3, mem), A.sd(a3, a1, 0), li(a2, src), A.amo(op, width, a0, a1, a2)]);
  return [m.x(a0), new DataView(m.ram.read(DATA, 8).buffer).getBigUint64(0, true)];
}

describe('RV64A atomic memory operations', () => {
  it('amo*.w operate on 32 bits, return the old value sign-extended, leave the upper word alone', () => {
    const hi = 0xaaaa_aaaa_0000_0000n;
    expect(amo('add', 'w', hi | 0x7fff_ffffn, 1n)).toEqual([u(0x7fff_ffffn), hi | 0x8000_0000n]);
    expect(amo('swap', 'w', hi | 0x8000_0000n, 5n)).toEqual([u(-(2n ** 31n)), hi | 5n]);
    expect(amo('xor', 'w', hi | 0xffn, 0x0fn)).toEqual([0xffn, hi | 0xf0n]);
    expect(amo('and', 'w', hi | 0xffn, 0x0fn)).toEqual([0xffn, hi | 0x0fn]);
    expect(amo('or', 'w', hi | 0xf0n, 0x0fn)).toEqual([0xf0n, hi | 0xffn]);
    expect(amo('min', 'w', hi | 0xffff_ffffn, 1n)).toEqual([u(-1n), hi | 0xffff_ffffn]); // -1 < 1 signed
    expect(amo('max', 'w', hi | 0xffff_ffffn, 1n)).toEqual([u(-1n), hi | 1n]);
    expect(amo('minu', 'w', hi | 0xffff_ffffn, 1n)).toEqual([u(-1n), hi | 1n]);
    expect(amo('maxu', 'w', hi | 0xffff_ffffn, 1n)).toEqual([u(-1n), hi | 0xffff_ffffn]);
  });

  it('amo*.d operate on 64 bits with signed and unsigned min/max', () => {
    expect(amo('add', 'd', 0xffff_ffffn, 1n)).toEqual([0xffff_ffffn, 0x1_0000_0000n]);
    expect(amo('swap', 'd', 1n, u(-1n))).toEqual([1n, u(-1n)]);
    expect(amo('min', 'd', u(-5n), 3n)).toEqual([u(-5n), u(-5n)]);
    expect(amo('max', 'd', u(-5n), 3n)).toEqual([u(-5n), 3n]);
    expect(amo('minu', 'd', u(-5n), 3n)).toEqual([u(-5n), 3n]);
    expect(amo('maxu', 'd', u(-5n), 3n)).toEqual([u(-5n), u(-5n)]);
    expect(amo('xor', 'd', 0xff00_0000_0000_00ffn, 0xffn)).toEqual([0xff00_0000_0000_00ffn, 0xff00_0000_0000_0000n]);
  });

  it('a misaligned AMO raises a store/AMO address-misaligned exception (cause 6), mtval = address', () => {
    const m = exec(withTrap([li(a1, DATA + 2), A.amo('add', 'w', a0, a1, a2)]), trapOpts);
    expect(m.csr('mcause')).toBe(6n);
    expect(m.csr('mtval')).toBe(BigInt(DATA + 2));
  });

  it('a misaligned LR raises a load address-misaligned exception (cause 4)', () => {
    const m = exec(withTrap([li(a1, DATA + 4), A.amo('lr', 'd', a0, a1)]), trapOpts);
    expect(m.csr('mcause')).toBe(4n);
  });

  it('an AMO to a device region raises a store/AMO access fault', () => {
    const m = exec(withTrap([li(a1, 0x1000_0000), A.amo('swap', 'w', a0, a1, a2)]), trapOpts);
    expect(m.csr('mcause')).toBe(7n);
  });
});

describe('RV64A load-reserved / store-conditional', () => {
  it('LR then SC to the same address succeeds (rd = 0) and stores', () => {
    const m = exec([li(a1, DATA), li(a2, 42), A.amo('lr', 'd', a0, a1), A.amo('sc', 'd', a3, a1, a2), A.ld(t0, a1, 0)]);
    expect(m.x(a3)).toBe(0n);
    expect(m.x(t0)).toBe(42n);
  });

  it('SC without a reservation fails (rd = 1) and does not store', () => {
    const m = exec([li(a1, DATA), li(a2, 42), A.amo('sc', 'w', a3, a1, a2), A.lw(t0, a1, 0)]);
    expect(m.x(a3)).toBe(1n);
    expect(m.x(t0)).toBe(0n);
  });

  it('SC fails when it targets a different address than the LR', () => {
    const m = exec([li(a1, DATA), li(a2, 42), A.amo('lr', 'w', a0, a1), A.addi(a1, a1, 8), A.amo('sc', 'w', a3, a1, a2), A.lw(t0, a1, 0)]);
    expect(m.x(a3)).toBe(1n);
    expect(m.x(t0)).toBe(0n);
  });

  it('a second SC fails: every SC clears the reservation', () => {
    const m = exec([li(a1, DATA), li(a2, 1), A.amo('lr', 'w', a0, a1), A.amo('sc', 'w', a3, a1, a2), li(a2, 2), A.amo('sc', 'w', a0, a1, a2), A.lw(t0, a1, 0)]);
    expect(m.x(a3)).toBe(0n);
    expect(m.x(a0)).toBe(1n);
    expect(m.x(t0)).toBe(1n);
  });

  it('SC fails when the reserved word was changed (by another hart) since the LR', () => {
    const m = exec([li(a1, DATA), A.amo('lr', 'w', a0, a1)]);
    m.ram.i32[(DATA - m.ram.base) >> 2] = 99; // another vCPU's store to the shared RAM
    m.state.setReg(a2, 7);
    m.ram.write(Number(m.state.pc), A.assemble([A.amo('sc', 'w', a3, a1, a2), A.wfi()]));
    m.hart.flushCode();
    m.run();
    expect(m.x(a3)).toBe(1n);
    expect(m.ram.i32[(DATA - m.ram.base) >> 2]).toBe(99);
  });

  it('LR.W sign-extends the loaded word', () => {
    const m = exec([li(a1, DATA), li(a2, 0x8000_0000n), A.sw(a2, a1, 0), A.amo('lr', 'w', a0, a1)]);
    expect(m.x(a0)).toBe(u(-(2n ** 31n)));
  });

  it('a trap clears the reservation, so the SC after it fails', () => {
    // lr; ecall (trap to a handler that mrets to the next instruction); sc
    const handler = A.assemble([A.csrr(t0, 0x341), A.addi(t0, t0, 4), A.csrw(0x341, t0), A.mret()]);
    const m = exec(withTrap([li(a1, DATA), li(a2, 5), A.amo('lr', 'w', a0, a1), A.ecall(), A.amo('sc', 'w', a3, a1, a2)]), { load: [[HANDLER, handler]] });
    expect(m.x(a3)).toBe(1n);
  });
});
