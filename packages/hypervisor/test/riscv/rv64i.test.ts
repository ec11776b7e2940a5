import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { a0, a1, a2, a3, a4, a5, t0, t1, li } from './asm.js';
import { DATA, exec, RAM_BASE, u64 } from './harness.js';

const M64 = (1n << 64n) - 1n;
const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const u = (v: bigint): bigint => BigInt.asUintN(64, v);

/** Compute `op a0, a1, a2` (or an immediate form) and return a0. */
function rr(op: (rd: number, a: number, b: number) => number, x: bigint, y: bigint): bigint {
  return exec([li(a1, x), li(a2, y), op(a0, a1, a2)]).x(a0);
}
function ri(op: (rd: number, a: number, imm: number) => number, x: bigint, imm: number): bigint {
  return exec([li(a1, x), op(a0, a1, imm)]).x(a0);
}

describe('RV64I register-register and immediate ALU ops', () => {
  it('add and sub wrap around at 64 bits, carrying between the 32-bit halves', () => {
    expect(rr(A.add, 0xffff_ffffn, 1n)).toBe(0x1_0000_0000n);
    expect(rr(A.add, M64, 1n)).toBe(0n);
    expect(rr(A.sub, 0n, 1n)).toBe(M64);
    expect(rr(A.sub, 0x1_0000_0000n, 1n)).toBe(0xffff_ffffn);
    expect(ri(A.addi, 5n, -6)).toBe(M64);
    expect(ri(A.addi, 0xffff_ffffn, 1)).toBe(0x1_0000_0000n);
  });

  it('slt/sltu and their immediate forms compare signed and unsigned 64-bit values', () => {
    expect(rr(A.slt, -1n, 0n)).toBe(1n);
    expect(rr(A.sltu, -1n, 0n)).toBe(0n);
    expect(rr(A.slt, 0x8000_0000n, 0x7fff_ffffn)).toBe(0n); // positive 64-bit despite bit 31
    expect(rr(A.sltu, 0x1_0000_0000n, 0x2_0000_0000n)).toBe(1n);
    expect(rr(A.slt, -(2n ** 63n), 2n ** 63n - 1n)).toBe(1n);
    expect(ri(A.slti, -5n, -4)).toBe(1n);
    expect(ri(A.sltiu, 3n, -1)).toBe(1n); // imm sign-extends, then compares unsigned
    expect(ri(A.sltiu, 0n, 1)).toBe(1n); // seqz
  });

  it('and/or/xor and their immediates work on both halves, immediates sign-extended', () => {
    expect(rr(A.and, 0xf0f0_0000_ffffn, 0xff00_ff00_0ff0n)).toBe(0xf000_0000_0ff0n);
    expect(rr(A.or, 0x1_0000_0000n, 1n)).toBe(0x1_0000_0001n);
    expect(rr(A.xor, M64, 0x1234n)).toBe(u(~0x1234n));
    expect(ri(A.andi, 0x1234_5678_9abc_def0n, -16)).toBe(0x1234_5678_9abc_def0n);
    expect(ri(A.ori, 0n, -1)).toBe(M64);
    expect(ri(A.xori, 0x5n, -1)).toBe(u(~5n)); // not
  });

  it('64-bit shifts use 6-bit amounts, across the 32-bit halves', () => {
    for (const sh of [0, 1, 31, 32, 33, 63]) {
      const v = 0x8123_4567_89ab_cdefn;
      expect(ri(A.slli, v, sh)).toBe(u(v << BigInt(sh)));
      expect(ri(A.srli, v, sh)).toBe(v >> BigInt(sh));
      expect(ri(A.srai, v, sh)).toBe(u(s64(v) >> BigInt(sh)));
      expect(rr(A.sll, v, BigInt(sh) + 64n)).toBe(u(v << BigInt(sh))); // only the low 6 bits count
      expect(rr(A.srl, v, BigInt(sh))).toBe(v >> BigInt(sh));
      expect(rr(A.sra, v, BigInt(sh))).toBe(u(s64(v) >> BigInt(sh)));
    }
  });

  it('lui and auipc sign-extend their 32-bit result and auipc adds the pc', () => {
    expect(exec([A.lui(a0, 0x80000)]).x(a0)).toBe(0xffff_ffff_8000_0000n);
    expect(exec([A.lui(a0, 0x7ffff)]).x(a0)).toBe(0x7fff_f000n);
    expect(exec([A.auipc(a0, 0)]).x(a0)).toBe(BigInt(RAM_BASE));
    expect(exec([A.addi(0, 0, 0), A.auipc(a0, 0xfffff)]).x(a0)).toBe(BigInt(RAM_BASE) + 4n - 0x1000n);
  });

  it('writes to x0 are discarded', () => {
    const m = exec([A.addi(0, 0, 5), A.lui(0, 1), A.add(a0, 0, 0)]);
    expect(m.x(0)).toBe(0n);
    expect(m.x(a0)).toBe(0n);
  });
});

describe('RV64I W-form operations', () => {
  it('addw/subw/addiw compute in 32 bits and sign-extend the result', () => {
    expect(rr(A.addw, 0x7fff_ffffn, 1n)).toBe(0xffff_ffff_8000_0000n);
    expect(rr(A.subw, 0n, 1n)).toBe(M64);
    expect(rr(A.addw, 0x1_0000_0005n, 0x2_0000_0003n)).toBe(8n); // upper bits ignored
    expect(ri(A.addiw, 0xffff_ffffn, 0)).toBe(M64); // sext.w
    expect(ri(A.addiw, 0x7fff_ffffn, 1)).toBe(0xffff_ffff_8000_0000n);
  });

  it('sllw/srlw/sraw use only 5 bits of the shift amount: shifting by >= 32 wraps', () => {
    expect(rr(A.sllw, 1n, 32n)).toBe(1n);
    expect(rr(A.sllw, 1n, 33n)).toBe(2n);
    expect(rr(A.sllw, 1n, 31n)).toBe(0xffff_ffff_8000_0000n);
    expect(rr(A.srlw, 0x8000_0000n, 31n)).toBe(1n);
    expect(rr(A.srlw, 0xffff_ffff_8000_0000n, 0n)).toBe(0xffff_ffff_8000_0000n); // srlw by 0 still sign-extends bit 31
    expect(rr(A.srlw, 0x8000_0000n, 1n)).toBe(0x4000_0000n); // zero-fills, then sign-extends bit 31 (0)
    expect(rr(A.sraw, 0x8000_0000n, 4n)).toBe(0xffff_ffff_f800_0000n);
    expect(rr(A.sraw, 0x8000_0000n, 36n)).toBe(0xffff_ffff_f800_0000n);
    expect(ri(A.slliw, 0x1_0000_0001n, 31)).toBe(0xffff_ffff_8000_0000n);
    expect(ri(A.srliw, M64, 28)).toBe(0xfn);
    expect(ri(A.sraiw, 0x8000_0000n, 31)).toBe(M64);
  });

  it('slliw/srliw/sraiw with shamt[5] set are illegal instructions', () => {
    const bad = (A.slliw(a0, a0, 0) | (1 << 25)) >>> 0;
    const m = exec([li(t0, 0x8000_1000), A.csrw(0x305, t0), bad], { load: [[0x8000_1000, new Uint8Array([0x73, 0, 0x50, 0x10])]] });
    expect(m.csr('mcause')).toBe(2n);
    expect(m.csr('mtval')).toBe(BigInt(bad));
  });
});

describe('RV64I control transfer', () => {
  const taken = (br: (a: number, b: number, off: number) => number, x: bigint, y: bigint): boolean =>
    exec([li(a1, x), li(a2, y), li(a0, 0), br(a1, a2, 8), li(a0, 1)]).x(a0) === 0n;

  it('beq/bne/blt/bge/bltu/bgeu compare full 64-bit values, signed or unsigned', () => {
    expect(taken(A.beq, 0x1_0000_0000n, 0n)).toBe(false);
    expect(taken(A.beq, M64, -1n)).toBe(true);
    expect(taken(A.bne, 0x1_0000_0000n, 0n)).toBe(true);
    expect(taken(A.blt, -1n, 0n)).toBe(true);
    expect(taken(A.blt, 0x1_0000_0000n, 0xffff_ffffn)).toBe(false);
    expect(taken(A.bge, 0n, 0n)).toBe(true);
    expect(taken(A.bge, -2n, -1n)).toBe(false);
    expect(taken(A.bltu, 0n, -1n)).toBe(true);
    expect(taken(A.bgeu, -1n, 0n)).toBe(true);
    expect(taken(A.bgeu, 0x1_0000_0000n, 0x1_0000_0001n)).toBe(false);
  });

  it('a backward branch loop runs to completion (self-looping block)', () => {
    // a0 = sum of 1..1000
    const m = exec([li(a0, 0), li(a1, 1000), A.add(a0, a0, a1), A.addi(a1, a1, -1), A.bne(a1, 0, -8)]);
    expect(m.x(a0)).toBe(500500n);
  });

  it('jal links pc+4 and jumps; jalr clears bit 0 of the target and may use rd = rs1', () => {
    // 0: jal a0, +8 | 4: li a1,1 | 8: auipc t0,0 | 12: jalr t0, 13(t0) -> 21 & ~1 = 20 | 16: li a2,7 | 20: li a3,9
    const m = exec([A.jal(a0, 8), li(a1, 1), A.auipc(t0, 0), A.jalr(t0, t0, 13), li(a2, 7), li(a3, 9)]);
    expect(m.x(a0)).toBe(BigInt(RAM_BASE + 4));
    expect(m.x(a1)).toBe(0n);
    expect(m.x(t0)).toBe(BigInt(RAM_BASE + 16)); // link = address after jalr, computed after reading t0
    expect(m.x(a2)).toBe(0n);
    expect(m.x(a3)).toBe(9n);
  });
});

describe('RV64I loads and stores', () => {
  const data = (bytes: number[]) => ({ load: [[DATA, Uint8Array.from(bytes)] as [number, Uint8Array]] });
  const bytes = [0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a];

  it('lb/lh/lw/ld sign-extend and lbu/lhu/lwu zero-extend', () => {
    const m = exec([li(t0, DATA), A.lb(a0, t0, 0), A.lbu(a1, t0, 0), A.lh(a2, t0, 0), A.lhu(a3, t0, 0), A.lw(a4, t0, 0), A.lwu(a5, t0, 0), A.ld(t1, t0, 0)], data(bytes));
    expect(m.x(a0)).toBe(u(-0x7fn));
    expect(m.x(a1)).toBe(0x81n);
    expect(m.x(a2)).toBe(u(-0x7d7fn));
    expect(m.x(a3)).toBe(0x8281n);
    expect(m.x(a4)).toBe(0xffff_ffff_8483_8281n);
    expect(m.x(a5)).toBe(0x8483_8281n);
    expect(m.x(t1)).toBe(0x8887_8685_8483_8281n);
  });

  it('sb/sh/sw/sd store the low bytes little-endian, with negative offsets', () => {
    const m = exec([li(t0, DATA + 16), li(a0, 0x1122_3344_5566_7788n), A.sd(a0, t0, -16), A.sw(a0, t0, -8), A.sh(a0, t0, -4), A.sb(a0, t0, -2)]);
    expect([...m.ram.read(DATA, 15)]).toEqual([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55, 0x88, 0x77, 0x88]);
  });

  it('misaligned loads and stores succeed (emulated), including across a page boundary', () => {
    const m = exec([
      li(t0, DATA), A.lw(a0, t0, 1), A.ld(a1, t0, 3), A.lh(a2, t0, 7),
      li(t1, DATA + 0x1000 - 3), li(a3, 0x0102_0304_0506_0708n), A.sd(a3, t1, 0), A.ld(a4, t1, 0),
    ], data(bytes));
    expect(m.x(a0)).toBe(0xffff_ffff_8584_8382n);
    expect(m.x(a1)).toBe(0x008a_8988_8786_8584n); // bytes 3..10 (byte 10 is 0)
    expect(m.x(a2)).toBe(u(-0x7678n)); // 0x8988
    expect(m.x(a4)).toBe(0x0102_0304_0506_0708n);
  });

  it('a load from unmapped physical memory is a load access fault with mtval = the address', () => {
    const m = exec([li(t0, 0x8000_1000), A.csrw(0x305, t0), li(a1, 0x4000_0000), A.lw(a0, a1, 8)], { load: [[0x8000_1000, A.assemble([A.wfi()])]] });
    expect(m.csr('mcause')).toBe(5n);
    expect(m.csr('mtval')).toBe(0x4000_0008n);
    expect(m.csr('mepc')).toBe(BigInt(RAM_BASE + 4 * 5));
  });

  it('a store to unmapped physical memory is a store access fault', () => {
    const m = exec([li(t0, 0x8000_1000), A.csrw(0x305, t0), li(a1, 0x4000_0000), A.sd(a0, a1, 0)], { load: [[0x8000_1000, A.assemble([A.wfi()])]] });
    expect(m.csr('mcause')).toBe(7n);
    expect(m.csr('mtval')).toBe(0x4000_0000n);
  });

  it('MMIO loads and stores reach the device callbacks with the right size and offset', () => {
    const m = exec([li(t0, 0x1000_0000), li(a0, 0xab), A.sb(a0, t0, 3), A.sw(a0, t0, 8), A.lw(a1, t0, 0x10), A.lbu(a2, t0, 4)]);
    expect(m.mmioWrites).toEqual([[3, 1, 0xab], [8, 4, 0xab]]);
    expect(m.x(a1)).toBe(0x1234_0010n);
    expect(m.x(a2)).toBe(4n); // the low byte of what the device returned
  });

  it('code written by a store and then run after fence.i executes the new instructions', () => {
    // 0: auipc t0,0 | 4,8: li t1, insn | 12: sw t1, 24(t0) | 16: fence.i | 20: addi a0,0,1 | 24: addi a0,0,1 (patched)
    const m = exec([A.auipc(t0, 0), li(t1, A.addi(a0, 0, 42)), A.sw(t1, t0, 24), A.fence_i(), A.addi(a0, 0, 1), A.addi(a0, 0, 1)]);
    expect(m.x(a0)).toBe(42n);
  });
});
