import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { a0, a1, li, t0, t1 } from './asm.js';
import { exec, machine, RAM_BASE, u64 } from './harness.js';
import { CSR_SLOT, W } from '../../src/arch/riscv/vcpu-state.js';

const MTVEC = 0x305, STVEC = 0x105, MSTATUS = 0x300, MEPC = 0x341, MIE = 0x304, MIP = 0x344, MIDELEG = 0x303, MEDELEG = 0x302;
const SATP = 0x180, MCOUNTEREN = 0x306, SSTATUS = 0x100, SIE = 0x104;
const M_HANDLER = 0x8000_1000, S_HANDLER = 0x8000_2000, CODE2 = 0x8000_3000;
const INT = 1n << 63n;
/** Both handlers disable interrupts and stop (wfi with nothing enabled leaves the run loop). */
const handlers: [number, Uint8Array][] = [[M_HANDLER, A.assemble([A.csrw(MIE, 0), A.wfi()])], [S_HANDLER, A.assemble([A.csrw(SIE, 0), A.wfi()])]];
const setup: A.Program = [li(t0, M_HANDLER), A.csrw(MTVEC, t0), li(t0, S_HANDLER), A.csrw(STVEC, t0)];
const at = (prog: A.Program): number => RAM_BASE + A.sizeOf(prog);
/** Run `code` in privilege `priv`, entered from M-mode with mret; the caller sets up delegation first in `m`. */
function inMode(priv: number, mSetup: A.Program, code: A.Program) {
  const enter: A.Program = [...setup, ...mSetup, li(t0, priv << 11), A.csrw(MSTATUS, t0), li(t0, CODE2), A.csrw(MEPC, t0), A.mret()];
  return exec(enter, { load: [...handlers, [CODE2, A.assemble([...code, A.wfi()])]] });
}

describe('CSR access rules', () => {
  it('a CSR that does not exist raises illegal instruction with mtval = the instruction', () => {
    for (const csr of [0x7a0 /* tselect */, 0x3c0 /* pmpaddr16 */, 0x5c0 /* custom, not implemented */, 0x015 /* seed */, 0x002 /* frm: no F */]) {
      const insn = A.csrr(a0, csr);
      const m = exec([...setup, insn], { load: handlers });
      expect(m.csr('mcause'), `csr 0x${csr.toString(16)}`).toBe(2n);
      expect(m.csr('mtval')).toBe(BigInt(insn));
      expect(m.csr('mepc')).toBe(BigInt(at(setup)));
    }
  });

  it('writing a read-only CSR is illegal, but reading it with csrrs x0 is fine', () => {
    expect(exec([...setup, A.csrr(a0, 0xf14)], { load: handlers }).csr('mcause')).toBe(0n);
    const m = exec([...setup, A.csrw(0xf14, a0)], { load: handlers });
    expect(m.csr('mcause')).toBe(2n);
  });

  it('misa says RV64 with A, C, I, M, S, U; mhartid is the hart; mstatus shows UXL = SXL = 64-bit', () => {
    const m = exec([A.csrr(a0, 0x301), A.csrr(a1, 0xf14), A.csrr(t0, MSTATUS)]);
    expect(m.x(a0)).toBe((2n << 62n) | 0x141105n); // bits A=0 C=2 I=8 M=12 S=18 U=20
    expect(m.x(a1)).toBe(0n);
    expect((m.x(t0) >> 32n) & 0xfn).toBe(0xan);
  });

  it('csrrw/csrrs/csrrc and their immediate forms read the old value and write the new one', () => {
    const m = exec([li(t0, 0xf0), A.csrrw(a0, 0x340, t0), li(t1, 0x0f), A.csrrs(a0, 0x340, t1), A.csrrc(a1, 0x340, t0), A.csrrsi(t0, 0x340, 16), A.csrrci(t1, 0x340, 1), A.csrrwi(0, 0x340, 3), A.csrr(0x1e, 0x340)]);
    expect(m.x(a0)).toBe(0xf0n);
    expect(m.x(a1)).toBe(0xffn);
    expect(m.x(t0)).toBe(0x0fn);
    expect(m.x(t1)).toBe(0x1fn);
    expect(m.x(0x1e)).toBe(3n);
  });

  it('S-mode cannot touch M-mode CSRs; U-mode cannot touch S-mode CSRs', () => {
    expect(inMode(1, [], [A.csrr(a0, MSTATUS)]).csr('mcause')).toBe(2n);
    expect(inMode(0, [], [A.csrr(a0, SSTATUS)]).csr('mcause')).toBe(2n);
    expect(inMode(1, [], [A.csrr(a0, SSTATUS), A.ecall()]).csr('mcause')).toBe(9n); // allowed, then ecall
  });

  it('mstatus.MPP is WARL: writing the reserved value 2 keeps the previous mode', () => {
    const m = exec([li(t0, 1 << 11), A.csrw(MSTATUS, t0), li(t0, 2 << 11), A.csrw(MSTATUS, t0), A.csrr(a0, MSTATUS)]);
    expect((m.x(a0) >> 11n) & 3n).toBe(1n);
  });

  it('satp ignores writes of unsupported modes (Sv48/Sv57 probes) and keeps Bare', () => {
    const m = exec([li(t0, 9n << 60n), A.csrw(SATP, t0), A.csrr(a0, SATP), li(t0, 10n << 60n), A.csrw(SATP, t0), A.csrr(a1, SATP)]);
    expect(m.x(a0)).toBe(0n);
    expect(m.x(a1)).toBe(0n);
  });

  it('mepc and sepc ignore bit 0 (IALIGN = 16)', () => {
    expect(exec([li(t0, 0x8000_0003), A.csrw(MEPC, t0), A.csrr(a0, MEPC)]).x(a0)).toBe(0x8000_0002n);
  });

  it('counters: U-mode rdcycle is illegal unless mcounteren and scounteren allow it; instret counts', () => {
    expect(inMode(0, [], [A.csrr(a0, 0xc00)]).csr('mcause')).toBe(2n);
    expect(inMode(1, [li(t0, 7), A.csrw(MCOUNTEREN, t0)], [A.csrr(a0, 0xc01), A.ecall()]).csr('mcause')).toBe(9n);
    const m = exec([A.csrr(a0, 0xb02), A.addi(0, 0, 0), A.addi(0, 0, 0), A.csrr(a1, 0xb02)]);
    expect(m.x(a1) - m.x(a0)).toBe(3n);
  });

  it('time reads the 10 MHz CLINT mtime', () => {
    const m = exec([A.csrr(a0, 0xc01)]);
    const now = BigInt(m.clint.now());
    expect(m.x(a0) <= now && now - m.x(a0) < 10_000_000n).toBe(true);
  });
});

describe('traps and delegation', () => {
  it('ecall raises cause 11 from M, 9 from S, 8 from U, with mepc = the ecall and MPP = the old mode', () => {
    const mm = exec([...setup, A.ecall()], { load: handlers });
    expect(mm.csr('mcause')).toBe(11n);
    expect(mm.csr('mepc')).toBe(BigInt(at(setup)));
    expect((mm.csr('mstatus') >> 11n) & 3n).toBe(3n);
    const s = inMode(1, [], [A.ecall()]);
    expect(s.csr('mcause')).toBe(9n);
    expect(s.csr('mepc')).toBe(BigInt(CODE2));
    expect((s.csr('mstatus') >> 11n) & 3n).toBe(1n);
    const u = inMode(0, [], [A.ecall()]);
    expect(u.csr('mcause')).toBe(8n);
    expect((u.csr('mstatus') >> 11n) & 3n).toBe(0n);
    expect(u.state.priv).toBe(3);
  });

  it('an exception delegated in medeleg goes to S-mode: scause, sepc, stval, SPP; mcause untouched', () => {
    const m = inMode(0, [li(t0, 1 << 8), A.csrw(MEDELEG, t0)], [A.ecall()]);
    expect(m.state.priv).toBe(1);
    expect(m.csr('scause')).toBe(8n);
    expect(m.csr('sepc')).toBe(BigInt(CODE2));
    expect(m.csr('mcause')).toBe(0n);
    expect((m.csr('mstatus') >> 8n) & 1n).toBe(0n); // SPP = U
  });

  it('delegation never lowers privilege: a delegated exception in M-mode still traps to M', () => {
    const m = exec([...setup, li(t0, 1 << 2), A.csrw(MEDELEG, t0), 0xffffffff], { load: handlers });
    expect(m.csr('mcause')).toBe(2n);
    expect(m.csr('scause')).toBe(0n);
    expect(m.csr('mtval')).toBe(0xffff_ffffn);
  });

  it('an undelegated exception from S goes to M', () => {
    const m = inMode(1, [li(t0, 1 << 8), A.csrw(MEDELEG, t0)], [A.ecall()]);
    expect(m.state.priv).toBe(3);
    expect(m.csr('mcause')).toBe(9n);
  });

  it('ebreak sets mtval to its own address', () => {
    const m = exec([...setup, A.ebreak()], { load: handlers });
    expect(m.csr('mcause')).toBe(3n);
    expect(m.csr('mtval')).toBe(BigInt(at(setup)));
  });

  it('mret restores MIE from MPIE, sets MPIE, and leaves MPP = U', () => {
    // auipc; addi +16; csrw mepc; mret -> lands on the csrr after it, still in M (MPP = M)
    const m2 = exec([li(t0, (1 << 7) | (3 << 11)), A.csrw(MSTATUS, t0), A.auipc(t0, 0), A.addi(t0, t0, 16), A.csrw(MEPC, t0), A.mret(), A.csrr(a0, MSTATUS)]);
    expect(m2.state.priv).toBe(3);
    expect(m2.x(a0) & 0x8n).toBe(0x8n); // MIE <- MPIE
    expect((m2.x(a0) >> 7n) & 1n).toBe(1n); // MPIE <- 1
    expect((m2.x(a0) >> 11n) & 3n).toBe(0n); // MPP <- U
  });

  it('sret in S-mode with mstatus.TSR = 1 is illegal; wfi in U is illegal; wfi in S with TW = 1 is illegal', () => {
    const tsr = exec([...setup, li(t0, (1 << 11) | (1 << 22)), A.csrw(MSTATUS, t0), li(t0, CODE2), A.csrw(MEPC, t0), A.mret()], { load: [...handlers, [CODE2, A.assemble([A.sret()])]] });
    expect(tsr.csr('mcause')).toBe(2n);
    expect(tsr.csr('mtval')).toBe(BigInt(A.sret()));
    expect(inMode(0, [], [A.wfi()]).csr('mcause')).toBe(2n);
    const tw = exec([...setup, li(t0, (1 << 11) | (1 << 21)), A.csrw(MSTATUS, t0), li(t0, CODE2), A.csrw(MEPC, t0), A.mret()], { load: [...handlers, [CODE2, A.assemble([A.wfi()])]] });
    expect(tw.csr('mcause')).toBe(2n);
  });

  it('TVM = 1 makes satp accesses and sfence.vma in S-mode illegal', () => {
    const tvm = (insn: number) =>
      exec([...setup, li(t0, (1 << 11) | (1 << 20)), A.csrw(MSTATUS, t0), li(t0, CODE2), A.csrw(MEPC, t0), A.mret()], { load: [...handlers, [CODE2, A.assemble([insn])]] });
    expect(tvm(A.csrr(a0, SATP)).csr('mcause')).toBe(2n);
    expect(tvm(A.sfence_vma()).csr('mcause')).toBe(2n);
    expect(inMode(1, [], [A.csrr(a0, SATP), A.sfence_vma(), A.ecall()]).csr('mcause')).toBe(9n);
  });

  it('unknown SYSTEM encodings are illegal (e.g. funct3 = 4)', () => {
    const insn = 0x00004073;
    expect(exec([...setup, insn], { load: handlers }).csr('mtval')).toBe(BigInt(insn));
  });
});

describe('interrupts', () => {
  const msip = (v: number): A.Program => [li(t1, 0x0200_0000), li(t0, v), A.sw(t0, t1, 0)];

  it('a machine software interrupt (CLINT msip) is taken only when mie.MSIE and mstatus.MIE are set', () => {
    const notEnabled = machine([...setup, ...msip(1), li(t0, 8), A.csrw(MIE, t0), li(a0, 1), A.jal(0, 0)], { load: handlers });
    expect(notEnabled.run(20_000).reason).toBe('budget');
    expect(notEnabled.csr('mcause')).toBe(0n); // MIE=0 in M-mode: pending but not taken
    expect(notEnabled.x(a0)).toBe(1n);
    const taken = exec([...setup, ...msip(1), li(t0, 8), A.csrw(MIE, t0), A.csrrsi(0, MSTATUS, 8), li(a0, 1)], { load: handlers });
    expect(taken.csr('mcause')).toBe(INT | 3n);
    expect(taken.x(a0)).toBe(0n); // taken right after the csrrsi
  });

  it('vectored mtvec sends interrupts to base + 4*cause, exceptions to base', () => {
    const vec = A.assemble([...Array(7).fill(A.addi(0, 0, 0)), li(a1, 7), A.csrw(MIE, 0), A.wfi()]); // slot 7 = MTI
    const m = exec([li(t0, M_HANDLER + 1), A.csrw(MTVEC, t0), li(t1, 0x0200_4000), A.sd(0, t1, 0), li(t0, 0x80), A.csrw(MIE, t0), A.csrrsi(0, MSTATUS, 8), li(a0, 5)], { load: [[M_HANDLER, vec]] });
    expect(m.csr('mcause')).toBe(INT | 7n); // mtimecmp = 0 <= mtime: MTIP
    expect(m.x(a1)).toBe(7n);
    const e = exec([li(t0, M_HANDLER + 1), A.csrw(MTVEC, t0), A.ecall()], { load: [[M_HANDLER, A.assemble([li(a1, 1), A.wfi()])]] });
    expect(e.x(a1)).toBe(1n);
  });

  it('M-level interrupts are taken in S-mode even with mstatus.MIE = 0', () => {
    const m = inMode(1, [li(t0, 8), A.csrw(MIE, t0), ...msip(1)], [li(a0, 1), li(a0, 2)]);
    expect(m.csr('mcause')).toBe(INT | 3n);
    expect(m.csr('mepc')).toBe(BigInt(CODE2));
  });

  it('a delegated supervisor software interrupt: not taken in M, taken in S only with SIE, always in U', () => {
    const deleg: A.Program = [li(t0, 2), A.csrw(MIDELEG, t0), A.csrw(MIE, t0), A.csrw(MIP, t0)];
    const inM = exec([...setup, ...deleg, A.csrrsi(0, MSTATUS, 8), li(a0, 1)], { load: handlers });
    expect(inM.csr('scause')).toBe(0n);
    expect(inM.x(a0)).toBe(1n);
    const sNoSie = inMode(1, deleg, [li(a0, 1)]);
    expect(sNoSie.csr('scause')).toBe(0n);
    const sSie = inMode(1, deleg, [A.csrrsi(0, SSTATUS, 2), li(a0, 1)]);
    expect(sSie.csr('scause')).toBe(INT | 1n);
    expect(sSie.state.priv).toBe(1);
    const u = inMode(0, deleg, [li(a0, 1)]);
    expect(u.csr('scause')).toBe(INT | 1n);
    expect(u.csr('sepc')).toBe(BigInt(CODE2));
  });

  it('sie and sip only show delegated bits', () => {
    const m = exec([li(t0, 0xaaa), A.csrw(MIE, t0), li(t0, 0x20), A.csrw(MIDELEG, t0), A.csrr(a0, SIE), li(t0, 0x222), A.csrw(MIP, t0), A.csrr(a1, 0x144)]);
    expect(m.x(a0)).toBe(0x20n);
    expect(m.x(a1)).toBe(0x20n);
  });

  it('wfi with no enabled interrupt pending leaves the run loop with reason wfi; an injected interrupt wakes it', () => {
    const m = machine([li(t0, M_HANDLER), A.csrw(MTVEC, t0), li(t0, 0x200), A.csrw(MIE, t0), A.wfi(), li(a0, 1)], { load: handlers });
    expect(m.run().reason).toBe('wfi');
    expect(m.x(a0)).toBe(0n);
    expect(m.hart.interruptPending()).toBe(false);
    Atomics.or(m.state.i32, W.MIP, 0x200); // SEIP from the event-channel layer
    expect(m.hart.interruptPending()).toBe(true);
    m.run();
    expect(m.x(a0)).toBe(1n); // MIE = 0 in M-mode: wakes up but takes no trap
  });

  it('the preempt flag makes run() return "preempted" at its next poll', async () => {
    const { requestPreempt } = await import('../../src/arch/riscv/vcpu-state.js');
    const m = machine([A.jal(0, 0)]);
    requestPreempt(m.state);
    expect(m.run(1_000_000).reason).toBe('preempted');
    expect(m.run(10_000).reason).toBe('budget');
    expect(u64(m.state.csrLo(CSR_SLOT.mie))).toBe(0n);
  });
});
