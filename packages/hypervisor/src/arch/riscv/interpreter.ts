/**
 * The interpreter for cold blocks: a block is decoded once into a small
 * table of operations and run operation by operation, with no code
 * generation.  The hart runs a block this way until it has run HOT_RUNS
 * times, then translates it (translator.ts).
 *
 * Why: translating costs V8 a parse and a bytecode compile per block (~100 µs
 * per KB of source), then warm-up in V8's slower tiers, paid in full by the
 * many blocks of firmware that run once or a few times (U-Boot: 2,700 of
 * 4,100 blocks run at most ten times).  The interpreter's per-instruction
 * cost is higher than optimized translated code, but only hot blocks' speed
 * matters, and those are translated once they have proven hot.
 *
 * The interpreter implements exactly what the translator generates (the
 * differential test in test/riscv/interpreter.test.ts runs both): the same
 * block boundaries (decode.ts scanBlock), the same soft TLB fast path, and
 * the same hart helpers for slow-path loads and stores (MMIO, misaligned,
 * traps), atomics, CSRs and system instructions.  Registers live in the
 * VcpuState array itself, so a fault leaves the earlier instructions' results
 * in place, as the translator's writeback does.
 */
import * as d from './decode.js';
import { Step } from './decode.js';
import { div, divu, HI, mul, mulh, mulhsu, mulhu, rem, remu } from './alu64.js';
import { TLB_SIZE, type BlockHelpers } from './translator.js';
import { W } from './vcpu-state.js';

/**
 * Runs of a block in the interpreter before the hart translates it.  High
 * because a translated block is not fast at once: V8 runs it in Ignition,
 * then compiles it again at each tier (Sparkplug, Maglev, TurboFan), per
 * block, while the interpreter is one function that is optimized already.
 * Measured on U-Boot to its prompt (bench/RESULTS.md "## cpu"): 16 runs
 * translate 1,155 blocks, 1024 runs 297, and the run takes half the time;
 * bench.elf's hot loops still pass the threshold within milliseconds.
 */
export const HOT_RUNS = 1024;

/** Operations of the decoded form (one per instruction; RVC is expanded first). */
const enum Op {
  ILLEGAL, // a = the instruction's original bits
  LI, // rd <- (a, b): LUI, AUIPC, li
  JAL, // rd <- next pc; pc <- (a, b)
  JALR, // pc <- (rs1 + a) & ~1; rd <- next pc
  BEQ, BNE, BLT, BGE, BLTU, BGEU, // pc <- (a, b) if taken
  LB, LH, LW, LD, LBU, LHU, LWU, // rd <- [rs1 + a]
  SB, SH, SW, SD, // [rs1 + a] <- rs2
  ADDI, SLTI, SLTIU, XORI, ORI, ANDI, // rd <- rs1 op (a, b)
  SLLI, SRLI, SRAI, // shamt a
  ADD, SUB, SLL, SLT, SLTU, XOR, SRL, SRA, OR, AND,
  MUL, MULH, MULHSU, MULHU, DIV, DIVU, REM, REMU,
  ADDIW, SLLIW, SRLIW, SRAIW,
  ADDW, SUBW, SLLW, SRLW, SRAW,
  MULW, DIVW, DIVUW, REMW, REMUW,
  LR, SC, AMO, // a = size log2, b = funct5
  NOP,
  FENCE, // a store-to-load fence: a host barrier
  SYSTEM, // ecall/ebreak/xret/wfi/sfence.vma/fence.i: a = the instruction, b = its length
  CSR, // a = the instruction; rs1 is the register or the 5-bit immediate
  EXIT, // the fall-through end of a block: pc <- its own pc
}

/** Words per decoded instruction: op, rd, rs1, rs2, a, b, pc lo, pc hi. */
const STRIDE = 8;
// The translator's TLB tag masks: page number plus the low bits an aligned access has clear.
const TAG_MASK = [~0xfff, ~0xffe, ~0xffc, ~0xff8];
const TWO32 = 4294967296;
const M_OPS = [Op.MUL, Op.MULH, Op.MULHSU, Op.MULHU, Op.DIV, Op.DIVU, Op.REM, Op.REMU];
const AMO_FUNCT5 = [0, 1, 4, 8, 12, 16, 20, 24, 28];

/** A decoded block bound to its virtual PC: STRIDE words per instruction, then an EXIT entry. */
export interface DecodedBlock {
  ops: Int32Array;
  /** Instructions in the block (as the translator counts them). */
  count: number;
}

/** pc + delta for a block at (pl, ph): the translator's constant computation, as numbers. */
function pcLo(pl: number, delta: number): number {
  return (pl + delta) | 0;
}
function pcHi(pl: number, ph: number, delta: number): number {
  return (ph + Math.floor(((pl >>> 0) + delta) / TWO32)) | 0;
}

/** Fill entry `e` with the operation for `inst` at byte offset `pc` of the block; the Step says how the block goes on. */
function decodeInstruction(e: Int32Array, at: number, inst: number, len: number, pc: number, pl: number, ph: number): Step {
  const op = inst & 0x7f;
  const dst = d.rd(inst), s1 = d.rs1(inst), s2 = d.rs2(inst), f3 = d.funct3(inst), f7 = d.funct7(inst);
  const put = (o: Op, a = 0, b = 0): void => {
    e[at] = o;
    e[at + 1] = dst;
    e[at + 2] = s1;
    e[at + 3] = s2;
    e[at + 4] = a;
    e[at + 5] = b;
  };
  const target = (delta: number): [number, number] => [pcLo(pl, pc + delta), pcHi(pl, ph, pc + delta)];
  const sx = (imm: number): number => (imm < 0 ? -1 : 0);
  switch (op) {
    case 0x37: // LUI
      put(Op.LI, d.immU(inst) | 0, sx(d.immU(inst) | 0));
      return Step.CONTINUE;
    case 0x17: // AUIPC
      put(Op.LI, ...target(d.immU(inst) | 0));
      return Step.CONTINUE;
    case 0x6f: // JAL
      put(Op.JAL, ...target(d.immJ(inst)));
      return Step.END;
    case 0x67: // JALR
      if (f3 !== 0) return Step.ILLEGAL;
      put(Op.JALR, d.immI(inst));
      return Step.END;
    case 0x63: { // BRANCH
      const o = [Op.BEQ, Op.BNE, -1, -1, Op.BLT, Op.BGE, Op.BLTU, Op.BGEU][f3]!;
      if (o < 0) return Step.ILLEGAL;
      put(o, ...target(d.immB(inst)));
      return Step.END;
    }
    case 0x03: // LOAD
      if (f3 === 7) return Step.ILLEGAL;
      put(Op.LB + f3, d.immI(inst));
      return Step.CONTINUE;
    case 0x23: // STORE
      if (f3 > 3) return Step.ILLEGAL;
      put(Op.SB + f3, d.immS(inst));
      return Step.CONTINUE;
    case 0x13: { // OP-IMM
      const imm = d.immI(inst);
      if (f3 === 1 || f3 === 5) {
        // RV64 shifts: 6-bit shamt; funct6 must be 000000 (or 010000 for SRAI).
        const funct6 = inst >>> 26;
        if (f3 === 1 && funct6 !== 0) return Step.ILLEGAL;
        if (f3 === 5 && funct6 !== 0 && funct6 !== 0x10) return Step.ILLEGAL;
        put(f3 === 1 ? Op.SLLI : funct6 ? Op.SRAI : Op.SRLI, (inst >>> 20) & 63);
        return Step.CONTINUE;
      }
      put([Op.ADDI, -1, Op.SLTI, Op.SLTIU, Op.XORI, -1, Op.ORI, Op.ANDI][f3]!, imm, sx(imm));
      return Step.CONTINUE;
    }
    case 0x33: // OP
      if (f7 === 1) {
        put(M_OPS[f3]!);
        return Step.CONTINUE;
      }
      if (f7 !== 0 && !(f7 === 0x20 && (f3 === 0 || f3 === 5))) return Step.ILLEGAL;
      if (f7 === 0x20) put(f3 === 0 ? Op.SUB : Op.SRA);
      else put([Op.ADD, Op.SLL, Op.SLT, Op.SLTU, Op.XOR, Op.SRL, Op.OR, Op.AND][f3]!);
      return Step.CONTINUE;
    case 0x1b: { // OP-IMM-32
      const s = (inst >>> 20) & 31;
      if (f3 === 0) put(Op.ADDIW, d.immI(inst));
      else if (f3 === 1 && f7 === 0) put(Op.SLLIW, s);
      else if (f3 === 5 && f7 === 0) put(Op.SRLIW, s);
      else if (f3 === 5 && f7 === 0x20) put(Op.SRAIW, s);
      else return Step.ILLEGAL;
      return Step.CONTINUE;
    }
    case 0x3b: // OP-32
      if (f7 === 1) {
        const o = [Op.MULW, -1, -1, -1, Op.DIVW, Op.DIVUW, Op.REMW, Op.REMUW][f3]!;
        if (o < 0) return Step.ILLEGAL;
        put(o);
      } else if (f7 === 0 && f3 === 0) put(Op.ADDW);
      else if (f7 === 0x20 && f3 === 0) put(Op.SUBW);
      else if (f7 === 0 && f3 === 1) put(Op.SLLW);
      else if (f7 === 0 && f3 === 5) put(Op.SRLW);
      else if (f7 === 0x20 && f3 === 5) put(Op.SRAW);
      else return Step.ILLEGAL;
      return Step.CONTINUE;
    case 0x2f: { // AMO (RV64A): .W and .D only
      if (f3 !== 2 && f3 !== 3) return Step.ILLEGAL;
      const funct5 = inst >>> 27;
      if (funct5 === 2) {
        if (s2 !== 0) return Step.ILLEGAL;
        put(Op.LR, f3);
      } else if (funct5 === 3) put(Op.SC, f3);
      else if (AMO_FUNCT5.includes(funct5)) put(Op.AMO, f3, funct5);
      else return Step.ILLEGAL;
      return Step.CONTINUE;
    }
    case 0x0f: // MISC-MEM
      if (f3 === 0) {
        // Only an earlier store before a later load can be reordered by the host (see the translator).
        const pred = (inst >>> 24) & 0xf;
        const succ = (inst >>> 20) & 0xf;
        put(pred & 0b0001 && succ & 0b0010 ? Op.FENCE : Op.NOP);
        return Step.CONTINUE;
      }
      if (f3 === 1) {
        put(Op.SYSTEM, inst, len);
        return Step.END;
      }
      return Step.ILLEGAL;
    case 0x73: // SYSTEM
      if (f3 === 0 || f3 === 4) put(Op.SYSTEM, inst, len);
      else put(Op.CSR, inst);
      return Step.END;
    default:
      return Step.ILLEGAL;
  }
}

/**
 * Decode the block at virtual PC (pl, ph); `fetch16` and `first32` as for
 * translate().  Each entry carries its own PC; the entry after the last
 * instruction holds the next PC (EXIT, or the link/next value of the last).
 */
export function decodeBlock(fetch16: (index: number) => number, pl: number, ph: number, first32?: number): DecodedBlock {
  const e = new Int32Array((d.MAX_BLOCK + 1) * STRIDE);
  const slot = (k: number, pc: number): number => {
    const at = k * STRIDE;
    e[at + 6] = pcLo(pl, pc);
    e[at + 7] = pcHi(pl, ph, pc);
    return at;
  };
  const scan = d.scanBlock(
    fetch16,
    first32,
    (inst, len, pc, k) => decodeInstruction(e, slot(k, pc), inst, len, pc, pl, ph),
    (raw, pc, k) => {
      const at = slot(k, pc);
      e[at] = Op.ILLEGAL;
      e[at + 4] = raw;
    },
  );
  // The entry after the block: its PC is the next PC of the last instruction; EXIT when the block falls through.
  const at = slot(scan.count, scan.end);
  e[at] = Op.EXIT;
  return { ops: e.slice(0, at + STRIDE), count: scan.count };
}

/** The views and helpers the interpreter works on (the hart's, as for translated blocks). */
export interface InterpreterEnv {
  R: Int32Array;
  S8: Int8Array;
  U8: Uint8Array;
  S16: Int16Array;
  U16: Uint16Array;
  S32: Int32Array;
  RL: Int32Array;
  RH: Int32Array;
  RO: Int32Array;
  WL: Int32Array;
  WH: Int32Array;
  WO: Int32Array;
  F: Int32Array;
  X: BlockHelpers;
}

/**
 * Runs decoded blocks of one hart.  run() has the contract of a translated
 * block: it leaves the next PC in R[PC] and returns the instructions retired
 * (X.fault/X.trap/X.system decide both on the way out).
 */
export class Interpreter {
  private readonly R: Int32Array;
  private readonly S8: Int8Array;
  private readonly U8: Uint8Array;
  private readonly S16: Int16Array;
  private readonly U16: Uint16Array;
  private readonly S32: Int32Array;
  private readonly RL: Int32Array;
  private readonly RH: Int32Array;
  private readonly RO: Int32Array;
  private readonly WL: Int32Array;
  private readonly WH: Int32Array;
  private readonly WO: Int32Array;
  private readonly F: Int32Array;
  private readonly X: BlockHelpers;
  /** High word of the last value produced by a helper below (the load paths). */
  private vh = 0;
  /** Instructions retired by run() since the hart was created (for --stats). */
  retired = 0;

  constructor(env: InterpreterEnv) {
    this.R = env.R;
    this.S8 = env.S8;
    this.U8 = env.U8;
    this.S16 = env.S16;
    this.U16 = env.U16;
    this.S32 = env.S32;
    this.RL = env.RL;
    this.RH = env.RH;
    this.RO = env.RO;
    this.WL = env.WL;
    this.WH = env.WH;
    this.WO = env.WO;
    this.F = env.F;
    this.X = env.X;
  }

  run(block: DecodedBlock): number {
    const k = this.exec(block.ops);
    this.retired += k;
    return k;
  }

  private exec(e: Int32Array): number {
    const R = this.R, X = this.X;
    for (let k = 0, at = 0; ; k++, at += STRIDE) {
      const rd = e[at + 1]!, r1 = e[at + 2]!, r2 = e[at + 3]!, a = e[at + 4]!, b = e[at + 5]!;
      const l1 = R[2 * r1]!, h1 = R[2 * r1 + 1]!, l2 = R[2 * r2]!, h2 = R[2 * r2 + 1]!;
      let vl = 0, vh = 0;
      switch (e[at]! as Op) {
        case Op.ILLEGAL:
          return X.trap(2, a, 0, e[at + 6]!, e[at + 7]!, k);
        case Op.EXIT:
          R[W.PC] = e[at + 6]!;
          R[W.PC + 1] = e[at + 7]!;
          return k;
        case Op.LI: vl = a; vh = b; break;
        case Op.JAL:
          this.set(rd, e[at + STRIDE + 6]!, e[at + STRIDE + 7]!);
          return this.jump(a, b, k);
        case Op.JALR: {
          // The target is computed before rd is written (rd may be rs1).
          const tl = (l1 + a) | 0;
          const th = (h1 + (a < 0 ? -1 : 0) + ((tl >>> 0) < (l1 >>> 0) ? 1 : 0)) | 0;
          this.set(rd, e[at + STRIDE + 6]!, e[at + STRIDE + 7]!);
          return this.jump(tl & -2, th, k);
        }
        // A branch ends its block: taken to (a, b), else to the next entry's PC.
        case Op.BEQ: return l1 === l2 && h1 === h2 ? this.jump(a, b, k) : this.jump(e[at + STRIDE + 6]!, e[at + STRIDE + 7]!, k);
        case Op.BNE: return l1 !== l2 || h1 !== h2 ? this.jump(a, b, k) : this.jump(e[at + STRIDE + 6]!, e[at + STRIDE + 7]!, k);
        case Op.BLT: return lessSigned(l1, h1, l2, h2) ? this.jump(a, b, k) : this.jump(e[at + STRIDE + 6]!, e[at + STRIDE + 7]!, k);
        case Op.BGE: return !lessSigned(l1, h1, l2, h2) ? this.jump(a, b, k) : this.jump(e[at + STRIDE + 6]!, e[at + STRIDE + 7]!, k);
        case Op.BLTU: return lessUnsigned(l1, h1, l2, h2) ? this.jump(a, b, k) : this.jump(e[at + STRIDE + 6]!, e[at + STRIDE + 7]!, k);
        case Op.BGEU: return !lessUnsigned(l1, h1, l2, h2) ? this.jump(a, b, k) : this.jump(e[at + STRIDE + 6]!, e[at + STRIDE + 7]!, k);
        case Op.LB: case Op.LH: case Op.LW: case Op.LD: case Op.LBU: case Op.LHU: case Op.LWU: {
          const al = (l1 + a) | 0;
          const ah = (h1 + (a < 0 ? -1 : 0) + ((al >>> 0) < (l1 >>> 0) ? 1 : 0)) | 0;
          vl = this.load(e[at]! - Op.LB, al, ah);
          if (this.F[0] !== 0) return X.fault(e[at + 6]!, e[at + 7]!, k);
          vh = this.vh;
          break;
        }
        case Op.SB: case Op.SH: case Op.SW: case Op.SD: {
          const al = (l1 + a) | 0;
          const ah = (h1 + (a < 0 ? -1 : 0) + ((al >>> 0) < (l1 >>> 0) ? 1 : 0)) | 0;
          this.store(e[at]! - Op.SB, al, ah, l2, h2);
          if (this.F[0] !== 0) return X.fault(e[at + 6]!, e[at + 7]!, k);
          continue;
        }
        case Op.ADDI: vl = (l1 + a) | 0; vh = (h1 + b + ((vl >>> 0) < (l1 >>> 0) ? 1 : 0)) | 0; break;
        case Op.SLTI: vl = lessSigned(l1, h1, a, b) ? 1 : 0; break;
        case Op.SLTIU: vl = lessUnsigned(l1, h1, a, b) ? 1 : 0; break;
        case Op.XORI: vl = l1 ^ a; vh = h1 ^ b; break;
        case Op.ORI: vl = l1 | a; vh = h1 | b; break;
        case Op.ANDI: vl = l1 & a; vh = h1 & b; break;
        case Op.SLLI: vl = this.sll(l1, h1, a); vh = this.vh; break;
        case Op.SRLI: vl = this.srl(l1, h1, a); vh = this.vh; break;
        case Op.SRAI: vl = this.sra(l1, h1, a); vh = this.vh; break;
        case Op.ADD: vl = (l1 + l2) | 0; vh = (h1 + h2 + ((vl >>> 0) < (l1 >>> 0) ? 1 : 0)) | 0; break;
        case Op.SUB: vl = (l1 - l2) | 0; vh = (h1 - h2 - ((l1 >>> 0) < (l2 >>> 0) ? 1 : 0)) | 0; break;
        case Op.SLL: vl = this.sll(l1, h1, l2 & 63); vh = this.vh; break;
        case Op.SLT: vl = lessSigned(l1, h1, l2, h2) ? 1 : 0; break;
        case Op.SLTU: vl = lessUnsigned(l1, h1, l2, h2) ? 1 : 0; break;
        case Op.XOR: vl = l1 ^ l2; vh = h1 ^ h2; break;
        case Op.SRL: vl = this.srl(l1, h1, l2 & 63); vh = this.vh; break;
        case Op.SRA: vl = this.sra(l1, h1, l2 & 63); vh = this.vh; break;
        case Op.OR: vl = l1 | l2; vh = h1 | h2; break;
        case Op.AND: vl = l1 & l2; vh = h1 & h2; break;
        case Op.MUL: vl = mul(l1, h1, l2, h2); vh = HI[0]!; break;
        case Op.MULH: vl = mulh(l1, h1, l2, h2); vh = HI[0]!; break;
        case Op.MULHSU: vl = mulhsu(l1, h1, l2, h2); vh = HI[0]!; break;
        case Op.MULHU: vl = mulhu(l1, h1, l2, h2); vh = HI[0]!; break;
        case Op.DIV: vl = div(l1, h1, l2, h2); vh = HI[0]!; break;
        case Op.DIVU: vl = divu(l1, h1, l2, h2); vh = HI[0]!; break;
        case Op.REM: vl = rem(l1, h1, l2, h2); vh = HI[0]!; break;
        case Op.REMU: vl = remu(l1, h1, l2, h2); vh = HI[0]!; break;
        // The W forms: a 32-bit result, sign-extended (ISA manual §4.2.1, §13.1, §13.2 table 13.1).
        case Op.ADDIW: vl = (l1 + a) | 0; vh = vl >> 31; break;
        case Op.SLLIW: vl = l1 << a; vh = vl >> 31; break;
        case Op.SRLIW: vl = (l1 >>> a) | 0; vh = vl >> 31; break;
        case Op.SRAIW: vl = l1 >> a; vh = vl >> 31; break;
        case Op.ADDW: vl = (l1 + l2) | 0; vh = vl >> 31; break;
        case Op.SUBW: vl = (l1 - l2) | 0; vh = vl >> 31; break;
        case Op.SLLW: vl = l1 << (l2 & 31); vh = vl >> 31; break;
        case Op.SRLW: vl = (l1 >>> (l2 & 31)) | 0; vh = vl >> 31; break;
        case Op.SRAW: vl = l1 >> (l2 & 31); vh = vl >> 31; break;
        case Op.MULW: vl = Math.imul(l1, l2); vh = vl >> 31; break;
        case Op.DIVW: vl = l2 === 0 ? -1 : l1 === -2147483648 && l2 === -1 ? l1 : (l1 / l2) | 0; vh = vl >> 31; break;
        case Op.DIVUW: vl = l2 === 0 ? -1 : ((l1 >>> 0) / (l2 >>> 0)) | 0; vh = vl >> 31; break;
        case Op.REMW: vl = l2 === 0 ? l1 : l1 === -2147483648 && l2 === -1 ? 0 : (l1 % l2) | 0; vh = vl >> 31; break;
        case Op.REMUW: vl = l2 === 0 ? l1 : ((l1 >>> 0) % (l2 >>> 0)) | 0; vh = vl >> 31; break;
        case Op.LR: case Op.SC: case Op.AMO:
          vl = e[at]! === Op.LR ? X.lr(a, l1, h1) : e[at]! === Op.SC ? X.sc(a, l1, h1, l2, h2) : X.amo(b, a, l1, h1, l2, h2);
          if (this.F[0] !== 0) return X.fault(e[at + 6]!, e[at + 7]!, k);
          vh = HI[0]!;
          break;
        case Op.NOP: continue;
        case Op.FENCE: X.fence(); continue;
        case Op.SYSTEM:
          return X.system(a, e[at + 6]!, e[at + 7]!, b, k);
        case Op.CSR: {
          // csrrwi/csrrsi/csrrci take the rs1 field as a 5-bit immediate.
          const imm = ((a >>> 12) & 7) >= 5;
          vl = X.csr(a, imm ? r1 : l1, imm ? 0 : h1, k);
          if (this.F[0] !== 0) return X.fault(e[at + 6]!, e[at + 7]!, k);
          this.set(rd, vl, HI[0]!);
          R[W.PC] = e[at + STRIDE + 6]!;
          R[W.PC + 1] = e[at + STRIDE + 7]!;
          return k + 1;
        }
      }
      if (rd !== 0) {
        R[2 * rd] = vl;
        R[2 * rd + 1] = vh;
      }
    }
  }

  private set(rd: number, vl: number, vh: number): void {
    if (rd === 0) return;
    this.R[2 * rd] = vl;
    this.R[2 * rd + 1] = vh;
  }

  private jump(pl: number, ph: number, k: number): number {
    this.R[W.PC] = pl;
    this.R[W.PC + 1] = ph;
    return k + 1;
  }

  /** Load funct3 `f3` at (al, ah): the soft TLB, else the hart's slow path; the high word goes to this.vh. */
  private load(f3: number, al: number, ah: number): number {
    const size = f3 & 3;
    const i = (al >>> 12) & (TLB_SIZE - 1);
    if (this.RL[i] === (al & TAG_MASK[size]!) && this.RH[i] === ah) {
      const o = this.RO[i]! + (al & 4095);
      let vl: number;
      switch (f3) {
        case 0: vl = this.S8[o]!; this.vh = vl >> 31; return vl;
        case 1: vl = this.S16[o >> 1]!; this.vh = vl >> 31; return vl;
        case 2: vl = this.S32[o >> 2]!; this.vh = vl >> 31; return vl;
        case 3: this.vh = this.S32[(o >> 2) + 1]!; return this.S32[o >> 2]!;
        case 4: this.vh = 0; return this.U8[o]!;
        case 5: this.vh = 0; return this.U16[o >> 1]!;
        default: this.vh = 0; return this.S32[o >> 2]!;
      }
    }
    let vl = this.X.load(al, ah, size);
    if (this.F[0] !== 0) return 0;
    // The slow path returns bytes and halves zero-extended (the translator sign-extends as the load asks).
    switch (f3) {
      case 0: vl = (vl << 24) >> 24; this.vh = vl >> 31; break;
      case 1: vl = (vl << 16) >> 16; this.vh = vl >> 31; break;
      case 2: this.vh = vl >> 31; break;
      case 3: this.vh = HI[0]!; break;
      default: this.vh = 0; break;
    }
    return vl;
  }

  private store(size: number, al: number, ah: number, vl: number, vh: number): void {
    const i = (al >>> 12) & (TLB_SIZE - 1);
    if (this.WL[i] === (al & TAG_MASK[size]!) && this.WH[i] === ah) {
      const o = this.WO[i]! + (al & 4095);
      switch (size) {
        case 0: this.U8[o] = vl; return;
        case 1: this.U16[o >> 1] = vl; return;
        case 2: this.S32[o >> 2] = vl; return;
        default: this.S32[o >> 2] = vl; this.S32[(o >> 2) + 1] = vh; return;
      }
    }
    this.X.store(al, ah, size, vl, vh);
  }

  // 64-bit shifts by 0..63 (the translator's emitShiftConst/emitShiftVar); the high word goes to this.vh.
  private sll(l: number, h: number, s: number): number {
    if (s === 0) { this.vh = h; return l; }
    if (s < 32) { this.vh = (h << s) | (l >>> (32 - s)); return l << s; }
    this.vh = l << (s - 32);
    return 0;
  }
  private srl(l: number, h: number, s: number): number {
    if (s === 0) { this.vh = h; return l; }
    if (s < 32) { this.vh = (h >>> s) | 0; return (l >>> s) | (h << (32 - s)); }
    this.vh = 0;
    return (h >>> (s - 32)) | 0;
  }
  private sra(l: number, h: number, s: number): number {
    if (s === 0) { this.vh = h; return l; }
    if (s < 32) { this.vh = h >> s; return (l >>> s) | (h << (32 - s)); }
    this.vh = h >> 31;
    return h >> (s - 32);
  }
}

function lessSigned(l1: number, h1: number, l2: number, h2: number): boolean {
  return h1 < h2 || (h1 === h2 && (l1 >>> 0) < (l2 >>> 0));
}
function lessUnsigned(l1: number, h1: number, l2: number, h2: number): boolean {
  return (h1 >>> 0) < (h2 >>> 0) || (h1 === h2 && (l1 >>> 0) < (l2 >>> 0));
}
