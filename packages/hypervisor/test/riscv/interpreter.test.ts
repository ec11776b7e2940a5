/**
 * The cold-block interpreter against the translator: random RV64IMAC
 * programs (every opcode, RVC parcels, misaligned and MMIO accesses,
 * faults, atomics, CSRs, loops that get hot half way) run with the
 * interpreter only, the translator only, and the default mix (blocks promoted
 * after a few runs), and must end in the same state.  The harness's exec()
 * does the same for every hand-written test in this directory.
 */
import { describe, expect, it } from 'vitest';
import * as A from './asm.js';
import { differences, machine, MMIO_BASE, RAM_BASE, type TestMachine } from './harness.js';
import { expandCompressed, ILLEGAL } from '../../src/arch/riscv/decode.js';
import { HOT_RUNS } from '../../src/arch/riscv/interpreter.js';
import { MMIO, MMIO_READ_EXIT } from '../../src/arch/riscv/memory.js';
import type { RunExit } from '../../src/arch/riscv/hart.js';

const DATA = 0x8010_0000;
const HANDLER = 0x8003_0000;
/** x31 = DATA, x30 = the MMIO test device, x29 = scratch address for atomics; random code never writes them. */
const BASE = 31, MMIO_REG = 30, ADDR = 29, LOOP = 28;
const MSCRATCH = 0x340, MTVEC = 0x305;
/** A device whose every access leaves the run loop (as an ioreq to a device model does). */
const EXIT_DEV = MMIO_BASE + 0x2000;

/** mulberry32: a small seeded PRNG, so a failing seed can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const encR = (op: number, f3: number, f7: number, rd: number, rs1: number, rs2: number): number =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const encI = (op: number, f3: number, rd: number, rs1: number, imm: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const encS = (f3: number, rs1: number, rs2: number, imm: number): number =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | 0x23) >>> 0;

/** A generator of random straight-line code (plus short forward jumps and small loops). */
function generator(r: () => number) {
  const int = (n: number): number => Math.floor(r() * n);
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const rd = (): number => 1 + int(LOOP - 1); // x1..x27
  const rs = (): number => int(32);
  const imm12 = (): number => pick([0, 1, -1, 2047, -2048, int(4096) - 2048, int(64)]);
  /** An offset from DATA: often aligned to the access size, sometimes not, within ±2 KiB. */
  const dataOff = (size: number): number => (r() < 0.8 ? (int(512) - 256) * size : int(4096) - 2048);

  const alu = (): number => {
    switch (int(8)) {
      case 0: { // OP, incl. RV64M
        const [f7, f3] = pick([[0, int(8)], [0x20, 0], [0x20, 5], [1, int(8)]] as const);
        return encR(0x33, f3, f7, rd(), rs(), rs());
      }
      case 1: { // OP-32
        const [f7, f3] = pick([[0, 0], [0x20, 0], [0, 1], [0, 5], [0x20, 5], [1, pick([0, 4, 5, 6, 7])]] as const);
        return encR(0x3b, f3, f7, rd(), rs(), rs());
      }
      case 2: {
        const f3 = int(8);
        if (f3 === 1) return encI(0x13, 1, rd(), rs(), int(64));
        if (f3 === 5) return encI(0x13, 5, rd(), rs(), int(64) | pick([0, 0x400]));
        return encI(0x13, f3, rd(), rs(), imm12());
      }
      case 3: { // OP-IMM-32
        const f3 = pick([0, 1, 5]);
        return encI(0x1b, f3, rd(), rs(), f3 === 0 ? imm12() : int(32) | (f3 === 5 ? pick([0, 0x400]) : 0));
      }
      case 4: return (((int(1 << 20)) << 12) | (rd() << 7) | pick([0x37, 0x17])) >>> 0; // LUI / AUIPC
      case 5: return A.csrrs(rd(), pick([0xb02, 0xb00, 0xc02, 0x301, 0xf14, MSCRATCH]), 0); // counters count retired instructions
      case 6: return pick([A.csrrw, A.csrrs, A.csrrc])(rd(), MSCRATCH, rs());
      default: return pick([A.csrrwi, A.csrrsi, A.csrrci])(rd(), MSCRATCH, int(32));
    }
  };

  /** Encodings next to valid ones that are reserved: funct7/funct6 values the ISA does not define. */
  const illegal = (): number => pick([
    encR(0x33, pick([1, 2, 3, 4, 6, 7]), 0x20, rd(), rs(), rs()),
    encR(0x3b, pick([1, 2, 3]), 1, rd(), rs(), rs()),
    encI(0x13, 1, rd(), rs(), 0x400 | int(64)),
    encI(0x1b, 1, rd(), rs(), 0x20 | int(32)),
    encI(0x67, 1, rd(), rs(), 0),
    encI(0x03, 7, rd(), BASE, 0),
    encS(4, BASE, rs(), 0),
    (int(2 ** 32) | 3) >>> 0, // any 32-bit word (low bits 11, or it would be two RVC parcels, perhaps a backward branch): mostly illegal
  ]);

  const memory = (): A.Insn[] => {
    const size = int(4);
    switch (int(6)) {
      case 0: case 1: return [encI(0x03, int(7), rd(), BASE, dataOff(1 << size))]; // loads from RAM
      case 2: case 3: return [encS(size, BASE, rs(), dataOff(1 << size))]; // stores to RAM
      case 4: // MMIO: reads of the test device, writes recorded; negative offsets hit nothing (access fault)
        return [r() < 0.5 ? encI(0x03, int(7), rd(), MMIO_REG, int(256) * pick([1, 4, 8]) - (r() < 0.05 ? 1024 : 0)) : encS(size, MMIO_REG, rs(), int(256) * 4)];
      default: { // atomics on a DATA address (misaligned now and then: a trap)
        const w = r() < 0.5 ? 'w' : 'd';
        const off = (int(64) - 32) * 8 + (r() < 0.05 ? 2 : 0);
        const op = pick(Object.keys(A.AMO) as (keyof typeof A.AMO)[]);
        return [A.addi(ADDR, BASE, off), A.amo(op, w, rd(), ADDR, op === 'lr' ? 0 : rs())];
      }
    }
  };

  /** A random RVC parcel that expands to something other than a jump or branch. */
  const compressed = (): A.Insn[] => {
    for (;;) {
      const p = int(0x10000);
      if ((p & 3) === 3) continue;
      const x = expandCompressed(p);
      if (x !== ILLEGAL && [0x6f, 0x63, 0x67, 0x73].includes(x & 0x7f)) continue;
      // Leave x28..x31 alone (rd is bits 11:7 in the full-register forms).
      if (x !== ILLEGAL && ((x >>> 7) & 31) >= LOOP) continue;
      // Compressed loads/stores use x8..x15 and sp: point them at DATA first.
      const isMem = x !== ILLEGAL && ((x & 0x7f) === 0x03 || (x & 0x7f) === 0x23);
      if (isMem) {
        const base = (x >>> 15) & 31;
        if (base >= LOOP) continue;
        return [A.addi(base, BASE, 0), A.c(p)];
      }
      if (x === ILLEGAL && r() > 0.03) continue;
      return [A.c(p)];
    }
  };

  /** Control flow that keeps the program moving forward: jumps and branches over one 4-byte instruction. */
  const control = (): A.Insn[] => {
    const skipped = alu();
    switch (int(5)) {
      case 0: return [pick([A.beq, A.bne, A.blt, A.bge, A.bltu, A.bgeu])(rs(), rs(), 8), skipped];
      case 1: return [A.jal(rd(), 8), skipped];
      case 2: return [A.auipc(LOOP, 0), A.jalr(rd(), LOOP, 12 + int(2)), skipped]; // bit 0 of the target is dropped
      case 3: return [A.c((r() < 0.5 ? 0xc019 : 0xe019) | (int(8) << 7)), skipped]; // c.beqz/c.bnez x8..x15, +6
      default: return [A.fence(), 0x0000100f, A.addi(0, 0, 0)]; // fence, fence.i (ends the block)
    }
  };

  /** A loop of a few iterations (the harts promoting after 1 or 3 runs translate it half way). */
  const loop = (): A.Insn[] => {
    const body: A.Insn[] = [];
    for (let i = 0, n = 1 + int(6); i < n; i++) body.push(...(r() < 0.7 ? [alu()] : memory()));
    const size = A.sizeOf([...body, A.addi(LOOP, LOOP, -1)]);
    return [...A.li(LOOP, 1 + int(12)), ...body, A.addi(LOOP, LOOP, -1), A.bne(LOOP, 0, -size)];
  };

  return (n: number): A.Program => {
    const prog: A.Program = [];
    for (let reg = 1; reg < LOOP; reg++) {
      const v = pick([0n, 1n, -1n, 1n << 63n, (1n << 63n) - 1n, 0x8000_0000n, 0xffff_ffffn, BigInt(DATA + int(256) * 8)]);
      prog.push(A.li(reg, r() < 0.5 ? v : BigInt.asIntN(64, (BigInt(int(2 ** 32)) << 32n) | BigInt(int(2 ** 32)))));
    }
    for (let i = 0; i < n; i++) {
      const x = r();
      if (x < 0.46) prog.push(alu());
      else if (x < 0.71) prog.push(memory());
      else if (x < 0.81) prog.push(compressed());
      else if (x < 0.91) prog.push(control());
      else if (x < 0.995) prog.push(loop());
      else if (x < 0.9975) prog.push(illegal());
      else prog.push(pick([A.ecall(), A.ebreak(), encI(0x73, 4, rd(), 0, 0), encI(0x0f, 2, 0, 0, 0)])); // traps
    }
    return prog;
  };
}

/** The setup every random program runs first: trap handler, base registers. */
const prologue: A.Program = [A.li(BASE, HANDLER), A.csrw(MTVEC, BASE), A.li(BASE, DATA), A.li(MMIO_REG, MMIO_BASE)];

function runMode(prog: A.Program, hotRuns: number | undefined, data: Uint8Array): [TestMachine, RunExit] {
  const m = machine([...prologue, ...prog], {
    ramBytes: 2 << 20, hotRuns, frozenTime: 123_456_789,
    load: [[HANDLER, A.assemble([A.wfi()])], [DATA - 4096, data]],
  });
  return [m, m.run(200_000)];
}

/** Programs per run; RISCV_DIFF_SEEDS=2000 for a longer search. */
const SEEDS = Number(process.env.RISCV_DIFF_SEEDS ?? 150);

describe('interpreter and translator agree', () => {
  it(`on ${SEEDS} random RV64IMAC programs (interpreter only, translator only, translated after three runs, after one)`, () => {
    let traps = 0, retired = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = rng(seed);
      const data = Uint8Array.from({ length: 8192 }, () => Math.floor(r() * 256));
      const prog = generator(r)(120);
      const [base, exit] = runMode(prog, Infinity, data);
      expect(exit.reason, `seed ${seed}`).toBe('wfi');
      if (base.csr('mcause') !== 0n) traps++;
      retired += exit.executed;
      for (const hot of [0, 3, 1]) {
        const [m, e] = runMode(prog, hot, data);
        expect(differences(base, exit, m, e), `seed ${seed}, hotRuns ${hot}`).toBeUndefined();
      }
    }
    // The programs must exercise something: some run to the end, some trap on the way.
    expect(traps).toBeGreaterThan(SEEDS / 5);
    expect(traps).toBeLessThan(SEEDS * 0.8);
    expect(retired).toBeGreaterThan(SEEDS * 100);
  });
});

describe('interpreted blocks', () => {
  it('a block that runs often is translated; one that runs once never is', () => {
    const prog: A.Program = [A.li(A.a0, HOT_RUNS + 100), A.addi(A.a1, A.a1, 3), A.addi(A.a0, A.a0, -1), A.bne(A.a0, 0, -8), A.addi(A.a2, 0, 1)];
    const m = machine(prog, { hotRuns: HOT_RUNS });
    m.run();
    expect(m.x(A.a1)).toBe(3n * BigInt(HOT_RUNS + 100));
    const st = m.hart.stats;
    expect(st.blocksInterpreted).toBe(3); // entry, loop, tail
    expect(st.blocksTranslated).toBe(1); // the loop only
    expect(m.hart.interpretedInstructions).toBeLessThan(HOT_RUNS * 3 + 10);
  });

  it('a store into an interpreted block drops it, and fence.i makes the new code run in every mode', () => {
    // The body's addi a1,a1,1 becomes addi a1,a1,100 half way through the loop (after it was promoted).
    const patched = A.addi(A.a1, A.a1, 100);
    const BODY = RAM_BASE + 0x1000;
    const main: A.Program = [
      A.li(A.a0, 2 * HOT_RUNS + 2), A.li(A.t0, BODY), A.li(A.t1, patched), A.li(A.t2, HOT_RUNS + 1),
      A.jalr(A.ra, A.t0, 0), // loop start
      A.addi(A.a0, A.a0, -1),
      A.bne(A.a0, A.t2, 12), A.sw(A.t1, A.t0, 0), A.fence_i(), // at the midpoint: patch the body
      A.bne(A.a0, 0, -20),
    ];
    const load: [number, Uint8Array][] = [[BODY, A.assemble([A.addi(A.a1, A.a1, 1), A.jalr(0, A.ra, 0)])]];
    const results = [HOT_RUNS, Infinity, 0, 1].map((hotRuns) => {
      const m = machine(main, { hotRuns, load, frozenTime: 1 });
      return [m, m.run()] as const;
    });
    // HOT_RUNS + 1 runs before the patch, the rest after it.
    const before = 2 * HOT_RUNS + 2 - (HOT_RUNS + 1);
    expect(results[0]![0].x(A.a1)).toBe(BigInt(before + (HOT_RUNS + 1) * 100));
    for (const [m, e] of results.slice(1)) expect(differences(results[0]![0], results[0]![1], m, e)).toBeUndefined();
  });

  it('an MMIO access that leaves the run loop restarts in the interpreter and consumes the answer', () => {
    const prog: A.Program = [A.li(A.t0, EXIT_DEV), A.li(A.a1, 5), A.ld(A.a0, A.t0, 8), A.addi(A.a1, A.a1, 1), A.sd(A.a1, A.t0, 16), A.addi(A.a2, A.a0, 1)];
    const outcomes = [Infinity, 0].map((hotRuns) => {
      const m = machine(prog, { hotRuns });
      const seen: string[] = [];
      m.bus.map('exit-dev', EXIT_DEV, 0x100, { read: () => MMIO_READ_EXIT, write: () => MMIO.EXIT });
      let e = m.run();
      while (e.reason === 'mmio') {
        seen.push(`${e.mmio!.write ? 'w' : 'r'} ${e.mmio!.addr.toString(16)} ${e.mmio!.size} ${e.mmio!.value}`);
        m.hart.completeMmio(e.mmio!.write ? 0 : 0x1_2345_6789n);
        e = m.run();
      }
      return { seen, e, a0: m.x(A.a0), a1: m.x(A.a1), a2: m.x(A.a2) };
    });
    expect(outcomes[0]!.seen).toEqual(['r 10002008 8 0', 'w 10002010 8 6']);
    expect(outcomes[0]!.a2).toBe(0x1_2345_678an);
    expect(outcomes[0]).toEqual(outcomes[1]);
  });
});
