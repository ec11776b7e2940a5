import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { a0, a1, a2, a3, a4, a5, c, li, ra, sp, t0 } from './asm.js';
import { DATA, exec, RAM_BASE } from './harness.js';

const u = (v: bigint): bigint => BigInt.asUintN(64, v);
const HANDLER = 0x8000_1000;
/** mtvec -> a handler that stops; then `body`. */
const withTrap = (body: A.Program): A.Program => [li(t0, HANDLER), A.csrw(0x305, t0), ...body];
const trapOpts = { load: [[HANDLER, A.assemble([A.wfi()])] as [number, Uint8Array]] };

// Encodings produced by GNU as 2.40 (-march=rv64imac), see the RVC listings (ISA manual ch. 16).
const C = {
  addi4spn_a0_sp_1020: 0x1fe8,
  lw_a1_124_a0: 0x5d6c,
  ld_a2_248_a0: 0x7d70,
  sw_a1_4_a0: 0xc14c,
  sd_a2_8_a0: 0xe510,
  addi_a3_m32: 0x1681,
  addiw_a3_31: 0x26fd,
  li_a4_m1: 0x577d,
  addi16sp_m512: 0x7101,
  lui_a5_fffe0: 0x7781,
  srli_a0_63: 0x917d,
  srai_a1_33: 0x9585,
  andi_a2_m2: 0x9a79,
  sub_a0_a1: 0x8d0d,
  xor_a0_a1: 0x8d2d,
  or_a0_a1: 0x8d4d,
  and_a0_a1: 0x8d6d,
  subw_a0_a1: 0x9d0d,
  addw_a0_a1: 0x9d2d,
  slli_a3_63: 0x16fe,
  lwsp_a4_252: 0x577e,
  ldsp_a5_504: 0x77fe,
  jr_ra: 0x8082,
  mv_a0_a1: 0x852e,
  ebreak: 0x9002,
  jalr_a0: 0x9502,
  add_a0_a1: 0x952e,
  swsp_a4_252: 0xdfba,
  sdsp_a5_504: 0xffbe,
  nop: 0x0001,
  j_m2048: 0xb001,
  bnez_a1_p2: 0xe189,
  beqz_a0_p10: 0xc509,
};

describe('RVC: compressed instructions expand to their 32-bit meaning', () => {
  it('stack-pointer and register-based loads/stores use their scaled maximum offsets', () => {
    const data = new Uint8Array(1024);
    new DataView(data.buffer).setUint32(252, 0x8765_4321, true);
    new DataView(data.buffer).setBigUint64(504, 0x1122_3344_5566_7788n, true);
    const m = exec([li(sp, DATA), c(C.lwsp_a4_252), c(C.ldsp_a5_504), c(C.addi4spn_a0_sp_1020),
      li(a0, DATA + 128), c(C.lw_a1_124_a0), li(a0, DATA + 256), c(C.ld_a2_248_a0),
      li(a0, DATA + 512), c(C.sw_a1_4_a0), c(C.sd_a2_8_a0), li(sp, DATA + 600), c(C.swsp_a4_252), c(C.sdsp_a5_504)],
    { load: [[DATA, data]] });
    expect(m.x(a4)).toBe(u(0xffff_ffff_8765_4321n)); // c.lwsp sign-extends
    expect(m.x(a5)).toBe(0x1122_3344_5566_7788n);
    expect(m.x(a1)).toBe(u(0xffff_ffff_8765_4321n));
    expect(m.x(a2)).toBe(0x1122_3344_5566_7788n);
    const dv = new DataView(m.ram.read(DATA, 2048).buffer);
    expect(dv.getUint32(516, true)).toBe(0x8765_4321);
    expect(dv.getBigUint64(520, true)).toBe(0x1122_3344_5566_7788n);
    expect(dv.getUint32(852, true)).toBe(0x8765_4321);
    expect(dv.getBigUint64(1104, true)).toBe(0x1122_3344_5566_7788n);
  });

  it('c.addi4spn adds a zero-extended scaled immediate to sp', () => {
    expect(exec([li(sp, 0x1000), c(C.addi4spn_a0_sp_1020)]).x(a0)).toBe(0x1000n + 1020n);
  });

  it('immediate forms: c.addi, c.addiw (sign-extends), c.li, c.addi16sp, c.lui (sign-extended 18-bit)', () => {
    const m = exec([li(a3, 0x7fff_ffe0n), c(C.addiw_a3_31), c(C.li_a4_m1), li(sp, 0x10000), c(C.addi16sp_m512), c(C.lui_a5_fffe0)]);
    expect(m.x(a3)).toBe(u(0x7fff_ffffn));
    expect(m.x(a4)).toBe(u(-1n));
    expect(m.x(sp)).toBe(0x10000n - 512n);
    expect(m.x(a5)).toBe(u(-0x20000n));
    expect(exec([li(a3, 0), c(C.addi_a3_m32)]).x(a3)).toBe(u(-32n));
    expect(exec([li(a3, 0x7fff_ffffn), c(C.addiw_a3_31)]).x(a3)).toBe(u(-(2n ** 31n) + 30n)); // wraps at 32 bits
  });

  it('shifts use 6-bit amounts in RV64 (c.slli 63, c.srli 63, c.srai 33) and c.andi sign-extends', () => {
    const m = exec([li(a3, 1), c(C.slli_a3_63), li(a0, -1n), c(C.srli_a0_63), li(a1, -(2n ** 40n)), c(C.srai_a1_33), li(a2, 0xffn), c(C.andi_a2_m2)]);
    expect(m.x(a3)).toBe(1n << 63n);
    expect(m.x(a0)).toBe(1n);
    expect(m.x(a1)).toBe(u(-128n));
    expect(m.x(a2)).toBe(0xfen);
  });

  it('register-register forms: c.sub c.xor c.or c.and c.subw c.addw c.mv c.add', () => {
    const run = (op: number, x: bigint, y: bigint): bigint => exec([li(a0, x), li(a1, y), c(op)]).x(a0);
    expect(run(C.sub_a0_a1, 5n, 7n)).toBe(u(-2n));
    expect(run(C.xor_a0_a1, 0xf0n, 0xffn)).toBe(0x0fn);
    expect(run(C.or_a0_a1, 0x1_0000_0000n, 1n)).toBe(0x1_0000_0001n);
    expect(run(C.and_a0_a1, 0x1_0000_00ffn, 0x1_0000_000fn)).toBe(0x1_0000_000fn);
    expect(run(C.subw_a0_a1, 0n, 1n)).toBe(u(-1n));
    expect(run(C.addw_a0_a1, 0x7fff_ffffn, 1n)).toBe(u(-(2n ** 31n)));
    expect(run(C.mv_a0_a1, 1n, 0x1234_5678_9n)).toBe(0x1234_5678_9n);
    expect(run(C.add_a0_a1, 0xffff_ffffn, 1n)).toBe(0x1_0000_0000n);
  });

  it('c.jalr links pc+2 (not pc+4) and c.jr jumps', () => {
    // 0: auipc a0,0 | 4: addi a0,a0,12 | 8: c.jalr a0 | 10: c.nop | 12: c.mv a1?  -> target 12
    const m = exec([A.auipc(a0, 0), A.addi(a0, a0, 12), c(C.jalr_a0), c(C.li_a4_m1), li(a3, 3)]);
    expect(m.x(ra)).toBe(BigInt(RAM_BASE + 10));
    expect(m.x(a4)).toBe(0n); // skipped
    expect(m.x(a3)).toBe(3n);
  });

  it('c.beqz/c.bnez branch on a register compared with zero; c.j jumps backwards', () => {
    const m = exec([li(a0, 0), c(C.beqz_a0_p10), li(a2, 1), li(a3, 1), li(a1, 5), c(C.bnez_a1_p2), li(a4, 9)]);
    expect(m.x(a2)).toBe(0n);
    expect(m.x(a3)).toBe(0n);
    expect(m.x(a4)).toBe(9n);
  });

  it('mixing 16- and 32-bit instructions keeps the pc right (c.j -2048 loops back)', () => {
    const prog: A.Program = [li(a0, 0), A.addi(a0, a0, 1), li(a1, 2), A.bne(a0, a1, 8)];
    // after the bne falls through once a0 == 2; fill to 2048 bytes then c.j back to the start
    const m = exec([...prog]);
    expect(m.x(a0)).toBe(1n);
    const size = A.sizeOf([A.addi(a0, a0, 1), A.bne(a0, a1, 0)]);
    const loop = exec([li(a1, 3), li(a0, 0), A.addi(a0, a0, 1), A.beq(a0, a1, 2048 - 4 + 4), ...Array(2048 / 2 - size / 2).fill(c(C.nop)), c(C.j_m2048)]);
    expect(loop.x(a0)).toBe(3n);
  });

  it('HINT encodings (c.nop with an immediate, c.li x0, c.mv x0) execute as no-ops', () => {
    const m = exec([li(a0, 7), c(0x0005), c(0x4005), c(0x802e)]);
    expect(m.x(a0)).toBe(7n);
    expect(m.x(0)).toBe(0n);
  });

  const illegal = {
    'the all-zero parcel': 0x0000,
    'c.addi16sp with immediate 0': 0x6101,
    'c.lui with immediate 0': 0x6681,
    'c.lwsp with rd = x0': 0x4002,
    'c.jr with rs1 = x0': 0x8002,
    'c.addiw with rd = x0': 0x2001,
    'c.fld (no D extension)': 0x2000,
    'a reserved c.subw-space encoding': 0x9c41,
  };
  for (const [what, parcel] of Object.entries(illegal)) {
    it(`${what} raises illegal instruction with mtval = the 16-bit parcel`, () => {
      const m = exec(withTrap([c(parcel), c(C.nop)]), trapOpts);
      expect(m.csr('mcause')).toBe(2n);
      expect(m.csr('mtval')).toBe(BigInt(parcel));
      expect(m.csr('mepc')).toBe(BigInt(RAM_BASE + A.sizeOf(withTrap([]))));
    });
  }

  it('c.ebreak raises a breakpoint with mepc = its address', () => {
    const m = exec(withTrap([c(C.ebreak)]), trapOpts);
    expect(m.csr('mcause')).toBe(3n);
    expect(m.csr('mepc')).toBe(BigInt(RAM_BASE + A.sizeOf(withTrap([]))));
  });
});
