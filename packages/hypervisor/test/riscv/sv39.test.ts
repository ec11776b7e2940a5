import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { a0, a1, li, t0 } from './asm.js';
import { DATA, exec, type TestMachine } from './harness.js';

const MTVEC = 0x305, STVEC = 0x105, MSTATUS = 0x300, MEPC = 0x341, SATP = 0x180, MEDELEG = 0x302;
const M_HANDLER = 0x8000_1000, S_HANDLER = 0x8000_2000, S_CODE = 0x8000_3000;
const ROOT = 0x8020_0000, L1 = 0x8020_1000, L0 = 0x8020_2000;
const V = 1, R = 2, W = 4, X = 8, U = 16, AF = 64, DF = 128;
/** Virtual page n of the test window at 0x4000_0000 maps physical DATA + n pages. */
const VA = (page: number, off = 0) => 0x4000_0000 + page * 4096 + off;
const SUM = 1 << 18, MXR = 1 << 19;

const pte = (pa: number, flags: number): bigint => (BigInt(pa >>> 12) << 10n) | BigInt(flags);

interface Scenario {
  /** Flags of the leaf PTEs for test pages 0..n. */
  pages: number[];
  /** Extra mstatus bits for S-mode (SUM, MXR). */
  mstatus?: number;
  /** Delegate page faults to S. */
  delegate?: boolean;
  /** Enter U-mode instead of S-mode. */
  user?: boolean;
  /** Extra root entries (raw PTEs) by index. */
  root?: Record<number, bigint>;
}

/**
 * M-mode sets up Sv39 page tables (identity gigapage for the code at
 * 0x8000_0000, a 4 KiB window at 0x4000_0000), then mrets into `code`.
 */
function sv39(sc: Scenario, code: A.Program): TestMachine {
  const tables = new Uint8Array(3 * 4096);
  const dv = new DataView(tables.buffer);
  const code_flags = V | R | W | X | AF | DF | (sc.user ? U : 0);
  dv.setBigUint64(2 * 8, pte(0x8000_0000, code_flags), true); // 1 GiB identity map of RAM
  dv.setBigUint64(1 * 8, pte(L1, V), true);
  dv.setBigUint64(4096, pte(L0, V), true);
  sc.pages.forEach((f, n) => dv.setBigUint64(8192 + n * 8, pte(DATA + n * 4096, f), true));
  for (const [i, raw] of Object.entries(sc.root ?? {})) dv.setBigUint64(Number(i) * 8, raw, true);
  const satp = (8n << 60n) | BigInt(ROOT >>> 12);
  const prog: A.Program = [
    li(t0, M_HANDLER), A.csrw(MTVEC, t0), li(t0, S_HANDLER), A.csrw(STVEC, t0),
    li(t0, sc.delegate ? (1 << 12) | (1 << 13) | (1 << 15) : 0), A.csrw(MEDELEG, t0),
    li(t0, satp), A.csrw(SATP, t0), A.sfence_vma(),
    li(t0, ((sc.user ? 0 : 1) << 11) | (sc.mstatus ?? 0)), A.csrw(MSTATUS, t0),
    li(t0, S_CODE), A.csrw(MEPC, t0), A.mret(),
  ];
  return exec(prog, {
    load: [[ROOT, tables], [M_HANDLER, A.assemble([A.wfi()])], [S_HANDLER, A.assemble([A.wfi()])], [S_CODE, A.assemble([...code, A.wfi()])]],
  });
}
const leaf = (m: TestMachine, n: number): number => Number(new DataView(m.ram.read(L0 + n * 8, 8).buffer).getBigUint64(0, true) & 0xffn);

describe('Sv39 translation', () => {
  it('loads and stores go through the page tables to the mapped physical page', () => {
    const m = sv39({ pages: [V | R | W | AF | DF] }, [li(a0, VA(0, 8)), li(a1, 77), A.sd(a1, a0, 0), A.ld(t0, a0, 0)]);
    expect(m.x(t0)).toBe(77n);
    expect(new DataView(m.ram.read(DATA + 8, 8).buffer).getBigUint64(0, true)).toBe(77n);
  });

  it('a load from an unmapped page raises a load page fault with mtval = the address', () => {
    const m = sv39({ pages: [0] }, [li(a0, VA(0, 0x10)), A.ld(a1, a0, 0)]);
    expect(m.csr('mcause')).toBe(13n);
    expect(m.csr('mtval')).toBe(BigInt(VA(0, 0x10)));
    expect(m.csr('mepc')).toBe(BigInt(S_CODE + A.sizeOf([li(a0, VA(0, 0x10))])));
  });

  it('a store to a read-only page raises a store page fault (15); a load from it works', () => {
    const m = sv39({ pages: [V | R | AF] }, [li(a0, VA(0)), A.ld(a1, a0, 0), A.sd(a1, a0, 0)]);
    expect(m.csr('mcause')).toBe(15n);
    expect(m.csr('mtval')).toBe(BigInt(VA(0)));
  });

  it('fetching from a page without X raises an instruction page fault (12)', () => {
    const m = sv39({ pages: [V | R | W | AF | DF] }, [li(a0, VA(0)), A.jalr(0, a0, 0)]);
    expect(m.csr('mcause')).toBe(12n);
    expect(m.csr('mtval')).toBe(BigInt(VA(0)));
    expect(m.csr('mepc')).toBe(BigInt(VA(0)));
  });

  it('W without R is a reserved encoding: page fault', () => {
    expect(sv39({ pages: [V | W | AF | DF] }, [li(a0, VA(0)), A.sd(a1, a0, 0)]).csr('mcause')).toBe(15n);
  });

  it('S-mode may not touch U pages unless mstatus.SUM is set; never execute them', () => {
    expect(sv39({ pages: [V | R | W | U | AF | DF] }, [li(a0, VA(0)), A.ld(a1, a0, 0)]).csr('mcause')).toBe(13n);
    const sum = sv39({ pages: [V | R | W | U | AF | DF] }, [li(a0, VA(0)), A.ld(a1, a0, 0), A.ecall()]);
    expect(sum.csr('mcause')).toBe(13n);
    const ok = sv39({ pages: [V | R | W | U | AF | DF], mstatus: SUM }, [li(a0, VA(0)), A.ld(a1, a0, 0), A.ecall()]);
    expect(ok.csr('mcause')).toBe(9n);
  });

  it('U-mode may not touch pages without U', () => {
    const m = sv39({ pages: [V | R | W | AF | DF], user: true }, [li(a0, VA(0)), A.ld(a1, a0, 0)]);
    expect(m.csr('mcause')).toBe(13n);
    const ok = sv39({ pages: [V | R | W | U | AF | DF], user: true }, [li(a0, VA(0)), A.ld(a1, a0, 0), A.ecall()]);
    expect(ok.csr('mcause')).toBe(8n);
  });

  it('mstatus.MXR makes execute-only pages readable', () => {
    expect(sv39({ pages: [V | X | AF] }, [li(a0, VA(0)), A.ld(a1, a0, 0)]).csr('mcause')).toBe(13n);
    expect(sv39({ pages: [V | X | AF], mstatus: MXR }, [li(a0, VA(0)), A.ld(a1, a0, 0), A.ecall()]).csr('mcause')).toBe(9n);
  });

  it('the walker sets A on access and D on store, in the PTE in guest memory', () => {
    const m = sv39({ pages: [V | R | W, V | R | W] }, [li(a0, VA(0)), A.ld(a1, a0, 0), li(a0, VA(1)), A.sd(a1, a0, 0)]);
    expect(leaf(m, 0) & (AF | DF)).toBe(AF);
    expect(leaf(m, 1) & (AF | DF)).toBe(AF | DF);
  });

  it('a store to a clean page sets D even after a load cached the translation', () => {
    const m = sv39({ pages: [V | R | W | AF] }, [li(a0, VA(0)), A.ld(a1, a0, 0), A.sd(a1, a0, 8)]);
    expect(leaf(m, 0) & DF).toBe(DF);
  });

  it('addresses that are not sign-extended from bit 38 raise a page fault', () => {
    const m = sv39({ pages: [V | R | W | AF | DF] }, [li(a0, 0x40_0000_0000n), A.ld(a1, a0, 0)]);
    expect(m.csr('mcause')).toBe(13n);
    expect(m.csr('mtval')).toBe(0x40_0000_0000n);
  });

  it('a misaligned superpage (2 MiB leaf with a nonzero low PPN) raises a page fault', () => {
    const m = sv39({ pages: [], root: { 3: pte(0x8000_1000, V | R | W | AF | DF) } }, [li(a0, 0xc000_0000), A.ld(a1, a0, 0)]);
    expect(m.csr('mcause')).toBe(13n);
  });

  it('page faults delegated in medeleg go to S-mode with stval', () => {
    const m = sv39({ pages: [0], delegate: true }, [li(a0, VA(0, 4)), A.sw(a1, a0, 0)]);
    expect(m.state.priv).toBe(1);
    expect(m.csr('scause')).toBe(15n);
    expect(m.csr('stval')).toBe(BigInt(VA(0, 4)));
    expect(m.csr('mcause')).toBe(0n);
  });

  it('after a PTE change, sfence.vma makes the new mapping visible', () => {
    // page 0 -> DATA, page 1 -> DATA+4096; point page 0 at page 1's frame, then sfence and read again
    const newPte = pte(DATA + 4096, V | R | W | AF | DF);
    const m = sv39({ pages: [V | R | W | AF | DF, V | R | W | AF | DF] }, [
      li(t0, DATA + 4096), li(a1, 5), A.sd(a1, t0, 0), // physical write of 5 into frame 1 (identity gigapage covers DATA)
      li(a0, VA(0)), A.ld(0x1c, a0, 0),
      li(t0, L0), li(a1, newPte), A.sd(a1, t0, 0), A.sfence_vma(), A.ld(0x1d, a0, 0),
    ]);
    expect(m.x(0x1c)).toBe(0n);
    expect(m.x(0x1d)).toBe(5n);
  });
});
