/**
 * The basic-block translator: guest machine code -> one JS function per
 * block (`new Function`), cached by the hart per physical PC.
 *
 * Why: a switch interpreter pays decode and dispatch on every instruction;
 * a translated block pays them once, and V8 then compiles the block's
 * straight-line JS to machine code with guest registers in host registers.
 *
 * Conventions of the generated code:
 * - 64-bit guest values are (lo, hi) int32 pairs; registers used by the block
 *   are loaded into locals `xNl`/`xNh` at entry and written back (only the
 *   dirty ones) at every exit.
 * - A block ends at a jump, branch, system/CSR instruction, fence.i, page end
 *   or MAX_BLOCK instructions.  It stores the next PC into R[PC] and returns
 *   the number of instructions retired.
 * - Loads/stores try the soft TLB inline (one tag compare, which also rejects
 *   misaligned addresses because the tag's low bits are zero); a miss calls
 *   the hart's slow path, which may set F[0] to report a trap or an MMIO exit.
 *   The block then writes back and returns `X.fault(pc, k)`: the precise PC of
 *   the faulting instruction and the k instructions that completed before it.
 */
import * as d from './decode.js';
import { Step } from './decode.js';
import { W } from './vcpu-state.js';

export { MAX_BLOCK } from './decode.js';
/** A self-looping block returns to the run loop after about this many instructions (poll interval). */
export const LOOP_LIMIT = 4096;
export const TLB_BITS = 9;
export const TLB_SIZE = 1 << TLB_BITS;

/** The hart-side helpers a translated block calls (implemented by Hart). */
export interface BlockHelpers {
  load(lo: number, hi: number, sizeLog2: number): number;
  store(lo: number, hi: number, sizeLog2: number, vl: number, vh: number): void;
  amo(funct5: number, sizeLog2: number, lo: number, hi: number, vl: number, vh: number): number;
  lr(sizeLog2: number, lo: number, hi: number): number;
  sc(sizeLog2: number, lo: number, hi: number, vl: number, vh: number): number;
  /** FENCE: a full barrier against the other threads touching guest RAM (common/fence.ts). */
  fence(): void;
  /** Zicsr instruction `inst` with the rs1/uimm operand (vl, vh). */
  csr(inst: number, vl: number, vh: number, k: number): number;
  /** Resolve a pending fault (F[0]) for the instruction at pc; returns k. */
  fault(pcl: number, pch: number, k: number): number;
  /** Raise an exception at the instruction at pc; returns k. */
  trap(cause: number, tvall: number, tvalh: number, pcl: number, pch: number, k: number): number;
  /** ecall/ebreak/mret/sret/wfi/fence.i/sfence.vma: set R[PC] and return the instructions retired. */
  system(inst: number, pcl: number, pch: number, len: number, k: number): number;
}


/** Generated-code builder for one block. */
class BlockSource {
  private readonly body: string[] = [];
  /** Set when the block branches back to its own start: it then runs as a JS loop. */
  private loops = false;
  /**
   * Guest PCs the block uses, as offsets from its start: the source names them
   * (p0l, p0h...) and the factory computes them from the start PC, so a copy
   * of the same code at another address (U-Boot relocates itself) has the
   * same source and reuses the compiled factory.
   */
  private readonly pcNames = new Map<number, number>();
  /** Guest PCs are offsets from the block's start here (plain numbers: no BigInt in the translator). */
  constructor() {}
  private readonly used = new Set<number>();
  private readonly dirty = new Set<number>();

  emit(code: string): void {
    this.body.push(code);
  }

  /** The (lo, hi) expressions of register r; x0 is the constant 0. */
  get(r: number): [string, string] {
    if (r === 0) return ['0', '0'];
    this.used.add(r);
    return [`x${r}l`, `x${r}h`];
  }

  /** The (lo, hi) names of guest address `pc` (computed once per closure, see pcNames). */
  pc(delta: number): [string, string] {
    let n = this.pcNames.get(delta);
    if (n === undefined) this.pcNames.set(delta, (n = this.pcNames.size));
    return [`p${n}l`, `p${n}h`];
  }

  /** rd <- (lo, hi); both expressions are evaluated before either is assigned. */
  set(r: number, lo: string, hi: string): void {
    if (r === 0) return;
    this.used.add(r);
    this.dirty.add(r);
    if (hi === `(${lo})>>31`) {
      this.emit(`x${r}l=${lo};x${r}h=x${r}l>>31;`);
    } else if (!hi.includes(`x${r}l`)) {
      // hi does not read rd's old low half, so no temporaries (smaller code compiles faster)
      this.emit(`x${r}l=${lo};x${r}h=${hi};`);
    } else {
      this.emit(`tl=${lo};th=${hi};x${r}l=tl;x${r}h=th;`);
    }
  }

  /** Sign-extend a 32-bit result into rd (the W forms). */
  setW(r: number, lo: string): void {
    if (r === 0) return;
    this.used.add(r);
    this.dirty.add(r);
    this.emit(`x${r}l=(${lo})|0;x${r}h=x${r}l>>31;`);
  }

  writeback(): string {
    let s = '';
    for (const r of this.dirty) s += `R[${2 * r}]=x${r}l;R[${2 * r + 1}]=x${r}h;`;
    return s;
  }

  /** Exit to a constant next PC. */
  exitTo(pc: number, retired: number): void {
    this.emit(this.exitCode(pc, retired));
  }

  /**
   * Code that leaves the block for `pc` after `retired` instructions.  A jump
   * back to the block's own start loops in JS instead (registers stay in
   * locals), up to LOOP_LIMIT instructions or until F[1] asks for attention.
   */
  exitCode(pc: number, retired: number): string {
    const [pl, ph] = this.pc(pc);
    const setPc = `R[${W.PC}]=${pl};R[${W.PC + 1}]=${ph};`;
    if (pc === 0) {
      this.loops = true;
      return `n+=${retired};if(n<${LOOP_LIMIT}&&F[1]===0)continue;${this.writeback()}${setPc}return n;`;
    }
    return `${this.writeback()}${setPc}return n+${retired};`;
  }

  /** Code for the fault path of a memory access of the instruction at pc. */
  faultExit(pc: number, k: number): string {
    const [pl, ph] = this.pc(pc);
    return `if(F[0]!==0){${this.writeback()}return X.fault(${pl},${ph},n+${k});}`;
  }

  /** The factory body: the PC constants, then the block function. */
  source(): string {
    let consts = '';
    for (const [delta, n] of this.pcNames) consts += `const p${n}l=(pl+${delta})|0,p${n}h=(ph+Math.floor(((pl>>>0)+${delta})/4294967296))|0;`;
    let prologue = 'let n=0,tl=0,th=0,al=0,ah=0,i=0,j=0,c=0,vl=0,vh=0;';
    for (const r of this.used) prologue += `let x${r}l=R[${2 * r}],x${r}h=R[${2 * r + 1}];`;
    const body = this.body.join('\n');
    // Parenthesised so V8 compiles the inner function eagerly instead of pre-parsing it, then parsing it again at the first call.
    return `${consts}return (function block(){${prologue}${this.loops ? `for(;;){${body}}` : body}});`;
  }
}

/** Effective address (rs1 + imm) into (al, ah). */
function emitAddress(b: BlockSource, base: number, imm: number): void {
  const [l, h] = b.get(base);
  if (imm === 0) {
    b.emit(`al=${l};ah=${h};`);
  } else {
    b.emit(`al=(${l}+${imm})|0;ah=(${h}+${imm < 0 ? -1 : 0}+((al>>>0)<(${l}>>>0)?1:0))|0;`);
  }
}

// The tag mask keeps the page number and the bits that must be zero for an aligned access.
const TAG_MASK = [~0xfff, ~0xffe, ~0xffc, ~0xff8];

function emitLoad(b: BlockSource, f3: number, dst: number, base: number, imm: number, pc: number, k: number): boolean {
  const size = f3 & 3;
  if (f3 === 7) return false; // no 128-bit loads
  emitAddress(b, base, imm);
  b.emit(`i=(al>>>12)&${TLB_SIZE - 1};`);
  const hit = `RL[i]===(al&${TAG_MASK[size]})&&RH[i]===ah`;
  const ofs = `RO[i]+(al&4095)`;
  let fast: string;
  switch (f3) {
    case 0: fast = `vl=S8[${ofs}];vh=vl>>31;`; break;
    case 1: fast = `vl=S16[(${ofs})>>1];vh=vl>>31;`; break;
    case 2: fast = `vl=S32[(${ofs})>>2];vh=vl>>31;`; break;
    case 3: fast = `j=(${ofs})>>2;vl=S32[j];vh=S32[j+1];`; break;
    case 4: fast = `vl=U8[${ofs}];vh=0;`; break;
    case 5: fast = `vl=U16[(${ofs})>>1];vh=0;`; break;
    default: fast = `vl=S32[(${ofs})>>2];vh=0;`; break;
  }
  let slowExt: string;
  switch (f3) {
    case 0: slowExt = 'vl=(vl<<24)>>24;vh=vl>>31;'; break;
    case 1: slowExt = 'vl=(vl<<16)>>16;vh=vl>>31;'; break;
    case 2: slowExt = 'vh=vl>>31;'; break;
    case 3: slowExt = 'vh=HI[0];'; break;
    default: slowExt = 'vh=0;'; break;
  }
  b.emit(`if(${hit}){${fast}}else{vl=X.load(al,ah,${size});${b.faultExit(pc, k)}${slowExt}}`);
  b.set(dst, 'vl', 'vh');
  return true;
}

function emitStore(b: BlockSource, f3: number, base: number, src: number, imm: number, pc: number, k: number): boolean {
  if (f3 > 3) return false;
  emitAddress(b, base, imm);
  const [vl, vh] = b.get(src);
  b.emit(`i=(al>>>12)&${TLB_SIZE - 1};`);
  const hit = `WL[i]===(al&${TAG_MASK[f3]})&&WH[i]===ah`;
  const ofs = `WO[i]+(al&4095)`;
  let fast: string;
  switch (f3) {
    case 0: fast = `U8[${ofs}]=${vl};`; break;
    case 1: fast = `U16[(${ofs})>>1]=${vl};`; break;
    case 2: fast = `S32[(${ofs})>>2]=${vl};`; break;
    default: fast = `j=(${ofs})>>2;S32[j]=${vl};S32[j+1]=${vh};`; break;
  }
  b.emit(`if(${hit}){${fast}}else{X.store(al,ah,${f3},${vl},${vh});${b.faultExit(pc, k)}}`);
  return true;
}

/** 64-bit add of (l1,h1) and (l2,h2) into rd. */
function emitAdd(b: BlockSource, dst: number, l1: string, h1: string, l2: string, h2: string): void {
  if (dst === 0) return;
  b.emit(`c=(${l1}+${l2})|0;vh=(${h1}+${h2}+((c>>>0)<(${l1}>>>0)?1:0))|0;`);
  b.set(dst, 'c', 'vh');
}

function emitSub(b: BlockSource, dst: number, l1: string, h1: string, l2: string, h2: string): void {
  if (dst === 0) return;
  b.emit(`c=(${l1}-${l2})|0;vh=(${h1}-${h2}-((${l1}>>>0)<(${l2}>>>0)?1:0))|0;`);
  b.set(dst, 'c', 'vh');
}

const lessSigned = (l1: string, h1: string, l2: string, h2: string): string =>
  `(${h1}<${h2}||(${h1}===${h2}&&(${l1}>>>0)<(${l2}>>>0)))`;
const lessUnsigned = (l1: string, h1: string, l2: string, h2: string): string =>
  `((${h1}>>>0)<(${h2}>>>0)||(${h1}===${h2}&&(${l1}>>>0)<(${l2}>>>0)))`;

/** Constant 64-bit shifts (shamt 0..63) of (l, h) into rd. */
function emitShiftConst(b: BlockSource, kind: 'sll' | 'srl' | 'sra', dst: number, l: string, h: string, s: number): void {
  if (dst === 0) return;
  if (s === 0) return b.set(dst, l, h);
  if (kind === 'sll') {
    if (s < 32) return b.set(dst, `${l}<<${s}`, `(${h}<<${s})|(${l}>>>${32 - s})`);
    return b.set(dst, '0', `${l}<<${s - 32}`);
  }
  if (kind === 'srl') {
    if (s < 32) return b.set(dst, `(${l}>>>${s})|(${h}<<${32 - s})`, `(${h}>>>${s})|0`);
    return b.set(dst, `(${h}>>>${s - 32})|0`, '0');
  }
  if (s < 32) return b.set(dst, `(${l}>>>${s})|(${h}<<${32 - s})`, `${h}>>${s}`);
  return b.set(dst, `${h}>>${s - 32}`, `${h}>>31`);
}

/** Variable 64-bit shifts: shift amount = low 6 bits of (sl). */
function emitShiftVar(b: BlockSource, kind: 'sll' | 'srl' | 'sra', dst: number, l: string, h: string, sl: string): void {
  if (dst === 0) return;
  let code = `c=${sl}&63;if(c===0){vl=${l};vh=${h};}else if(c<32){`;
  if (kind === 'sll') code += `vh=(${h}<<c)|(${l}>>>(32-c));vl=${l}<<c;}else{vh=${l}<<(c-32);vl=0;}`;
  else if (kind === 'srl') code += `vl=(${l}>>>c)|(${h}<<(32-c));vh=(${h}>>>c)|0;}else{vl=(${h}>>>(c-32))|0;vh=0;}`;
  else code += `vl=(${l}>>>c)|(${h}<<(32-c));vh=${h}>>c;}else{vl=${h}>>(c-32);vh=${h}>>31;}`;
  b.emit(code);
  b.set(dst, 'vl', 'vh');
}

/** OP / OP-IMM ALU operations (funct3 selects, alt = the bit-30 variant). */
function emitAlu(b: BlockSource, f3: number, alt: boolean, dst: number, l1: string, h1: string, l2: string, h2: string): void {
  if (dst === 0) return;
  switch (f3) {
    case 0: return alt ? emitSub(b, dst, l1, h1, l2, h2) : emitAdd(b, dst, l1, h1, l2, h2);
    case 2: return b.set(dst, `${lessSigned(l1, h1, l2, h2)}?1:0`, '0');
    case 3: return b.set(dst, `${lessUnsigned(l1, h1, l2, h2)}?1:0`, '0');
    case 4: return b.set(dst, `${l1}^${l2}`, `${h1}^${h2}`);
    case 6: return b.set(dst, `${l1}|${l2}`, `${h1}|${h2}`);
    case 7: return b.set(dst, `${l1}&${l2}`, `${h1}&${h2}`);
  }
}

const M_HELPERS = ['mul', 'mulh', 'mulhsu', 'mulhu', 'div', 'divu', 'rem', 'remu'];

/** RV64M 32-bit forms, sign-extended (ISA manual §13.1, §13.2 table 13.1). */
function emitMulDivW(b: BlockSource, f3: number, dst: number, a: string, c: string): boolean {
  switch (f3) {
    case 0: b.setW(dst, `Math.imul(${a},${c})`); return true;
    case 4: b.setW(dst, `${c}===0?-1:(${a}===-2147483648&&${c}===-1)?${a}:(${a}/${c})|0`); return true;
    case 5: b.setW(dst, `${c}===0?-1:((${a}>>>0)/(${c}>>>0))|0`); return true;
    case 6: b.setW(dst, `${c}===0?${a}:(${a}===-2147483648&&${c}===-1)?0:(${a}%${c})|0`); return true;
    case 7: b.setW(dst, `${c}===0?${a}:((${a}>>>0)%(${c}>>>0))|0`); return true;
    default: return false;
  }
}

const BRANCH_COND: Record<number, (l1: string, h1: string, l2: string, h2: string) => string> = {
  0: (l1, h1, l2, h2) => `(${l1}===${l2}&&${h1}===${h2})`,
  1: (l1, h1, l2, h2) => `(${l1}!==${l2}||${h1}!==${h2})`,
  4: lessSigned,
  5: (l1, h1, l2, h2) => `!${lessSigned(l1, h1, l2, h2)}`,
  6: lessUnsigned,
  7: (l1, h1, l2, h2) => `!${lessUnsigned(l1, h1, l2, h2)}`,
};

/**
 * Emit one instruction.  `k` = instructions of this block before it, so
 * `k + 1` have retired once it completes.
 */
function emitInstruction(b: BlockSource, inst: number, len: number, pc: number, k: number): Step {
  const op = inst & 0x7f;
  const dst = d.rd(inst), s1 = d.rs1(inst), s2 = d.rs2(inst), f3 = d.funct3(inst), f7 = d.funct7(inst);
  const next = pc + len;
  switch (op) {
    case 0x37: // LUI
      b.set(dst, `${d.immU(inst) | 0}`, `${(d.immU(inst) | 0) < 0 ? -1 : 0}`);
      return Step.CONTINUE;
    case 0x17: { // AUIPC
      const [vl, vh] = b.pc(pc + (d.immU(inst) | 0));
      b.set(dst, vl, vh);
      return Step.CONTINUE;
    }
    case 0x6f: { // JAL
      const target = pc + d.immJ(inst);
      b.set(dst, ...b.pc(next));
      b.exitTo(target, k + 1);
      return Step.END;
    }
    case 0x67: { // JALR: target computed before rd is written (rd may equal rs1)
      if (f3 !== 0) return Step.ILLEGAL;
      emitAddress(b, s1, d.immI(inst));
      b.emit('al=al&-2;');
      b.set(dst, ...b.pc(next));
      b.emit(`${b.writeback()}R[${W.PC}]=al;R[${W.PC + 1}]=ah;return n+${k + 1};`);
      return Step.END;
    }
    case 0x63: { // BRANCH
      const cond = BRANCH_COND[f3];
      if (!cond) return Step.ILLEGAL;
      const [l1, h1] = b.get(s1), [l2, h2] = b.get(s2);
      const target = pc + d.immB(inst);
      b.emit(`if(${cond(l1, h1, l2, h2)}){${b.exitCode(target, k + 1)}}${b.exitCode(next, k + 1)}`);
      return Step.END;
    }
    case 0x03: // LOAD
      return emitLoad(b, f3, dst, s1, d.immI(inst), pc, k) ? Step.CONTINUE : Step.ILLEGAL;
    case 0x23: // STORE
      return emitStore(b, f3, s1, s2, d.immS(inst), pc, k) ? Step.CONTINUE : Step.ILLEGAL;
    case 0x13: { // OP-IMM
      const [l1, h1] = b.get(s1);
      const imm = d.immI(inst);
      if (f3 === 1 || f3 === 5) {
        // RV64 shifts: 6-bit shamt; funct6 must be 000000 (or 010000 for SRAI).
        const funct6 = inst >>> 26;
        const s = (inst >>> 20) & 63;
        if (f3 === 1 && funct6 !== 0) return Step.ILLEGAL;
        if (f3 === 5 && funct6 !== 0 && funct6 !== 0x10) return Step.ILLEGAL;
        emitShiftConst(b, f3 === 1 ? 'sll' : funct6 ? 'sra' : 'srl', dst, l1, h1, s);
        return Step.CONTINUE;
      }
      if (f3 === 0 && s1 === 0) { // li
        b.set(dst, `${imm}`, `${imm < 0 ? -1 : 0}`);
        return Step.CONTINUE;
      }
      if (f3 === 0 && imm === 0) { // mv
        b.set(dst, l1, h1);
        return Step.CONTINUE;
      }
      emitAlu(b, f3, false, dst, l1, h1, `${imm}`, `${imm < 0 ? -1 : 0}`);
      return Step.CONTINUE;
    }
    case 0x33: { // OP
      const [l1, h1] = b.get(s1), [l2, h2] = b.get(s2);
      if (f7 === 1) { // RV64M
        if (dst === 0) return Step.CONTINUE;
        b.emit(`vl=${M_HELPERS[f3]}(${l1},${h1},${l2},${h2});vh=HI[0];`);
        b.set(dst, 'vl', 'vh');
        return Step.CONTINUE;
      }
      if (f7 !== 0 && !(f7 === 0x20 && (f3 === 0 || f3 === 5))) return Step.ILLEGAL;
      if (f3 === 1) emitShiftVar(b, 'sll', dst, l1, h1, l2);
      else if (f3 === 5) emitShiftVar(b, f7 ? 'sra' : 'srl', dst, l1, h1, l2);
      else emitAlu(b, f3, f7 === 0x20, dst, l1, h1, l2, h2);
      return Step.CONTINUE;
    }
    case 0x1b: { // OP-IMM-32
      const [l1] = b.get(s1);
      const imm = d.immI(inst);
      if (f3 === 0) { b.setW(dst, `${l1}+${imm}`); return Step.CONTINUE; }
      const s = (inst >>> 20) & 31;
      if (f3 === 1 && f7 === 0) { b.setW(dst, `${l1}<<${s}`); return Step.CONTINUE; }
      if (f3 === 5 && f7 === 0) { b.setW(dst, `${l1}>>>${s}`); return Step.CONTINUE; }
      if (f3 === 5 && f7 === 0x20) { b.setW(dst, `${l1}>>${s}`); return Step.CONTINUE; }
      return Step.ILLEGAL;
    }
    case 0x3b: { // OP-32
      const [l1] = b.get(s1), [l2] = b.get(s2);
      if (f7 === 1) return emitMulDivW(b, f3, dst, l1, l2) ? Step.CONTINUE : Step.ILLEGAL;
      if (f7 === 0 && f3 === 0) b.setW(dst, `${l1}+${l2}`);
      else if (f7 === 0x20 && f3 === 0) b.setW(dst, `${l1}-${l2}`);
      else if (f7 === 0 && f3 === 1) b.setW(dst, `${l1}<<(${l2}&31)`);
      else if (f7 === 0 && f3 === 5) b.setW(dst, `${l1}>>>(${l2}&31)`);
      else if (f7 === 0x20 && f3 === 5) b.setW(dst, `${l1}>>(${l2}&31)`);
      else return Step.ILLEGAL;
      return Step.CONTINUE;
    }
    case 0x2f: { // AMO (RV64A): .W and .D only
      if (f3 !== 2 && f3 !== 3) return Step.ILLEGAL;
      const funct5 = inst >>> 27;
      const [l1, h1] = b.get(s1), [l2, h2] = b.get(s2);
      let call: string;
      if (funct5 === 2) {
        if (s2 !== 0) return Step.ILLEGAL;
        call = `X.lr(${f3},${l1},${h1})`;
      } else if (funct5 === 3) {
        call = `X.sc(${f3},${l1},${h1},${l2},${h2})`;
      } else if ([0, 1, 4, 8, 12, 16, 20, 24, 28].includes(funct5)) {
        call = `X.amo(${funct5},${f3},${l1},${h1},${l2},${h2})`;
      } else return Step.ILLEGAL;
      b.emit(`vl=${call};${b.faultExit(pc, k)}vh=HI[0];`);
      b.set(dst, 'vl', 'vh');
      return Step.CONTINUE;
    }
    case 0x0f: // MISC-MEM: FENCE orders this hart's accesses against other threads (ring.h's mb()); FENCE.I ends the block
      if (f3 === 0) {
        // Only an earlier store before a later load can be reordered by the host (TSO) or the JIT; other FENCEs cost nothing.
        const pred = (inst >>> 24) & 0xf;
        const succ = (inst >>> 20) & 0xf;
        if (pred & 0b0001 && succ & 0b0010) b.emit('X.fence();');
        return Step.CONTINUE;
      }
      if (f3 === 1) {
        b.emit(`${b.writeback()}return X.system(${inst},${b.pc(pc).join(',')},${len},n+${k});`);
        return Step.END;
      }
      return Step.ILLEGAL;
    case 0x73: { // SYSTEM
      if (f3 === 0 || f3 === 4) {
        // ecall/ebreak/xret/wfi/sfence.vma: the hart decides (privilege checks, traps)
        b.emit(`${b.writeback()}return X.system(${inst},${b.pc(pc).join(',')},${len},n+${k});`);
        return Step.END;
      }
      // Zicsr: the CSR helper checks existence and privilege; the block ends after it
      // because a CSR write can change translation, interrupts or privilege state.
      let vl: string, vh: string;
      if (f3 >= 5) { vl = `${s1}`; vh = '0'; } else { [vl, vh] = b.get(s1); }
      b.emit(`vl=X.csr(${inst},${vl},${vh},n+${k});${b.faultExit(pc, k)}vh=HI[0];`);
      b.set(dst, 'vl', 'vh');
      b.exitTo(next, k + 1);
      return Step.END;
    }
    default:
      return Step.ILLEGAL;
  }
}

export interface TranslatedBlock {
  source: string;
  count: number;
}

/**
 * Translate the block starting at some virtual PC into position-independent
 * source (compile() binds it to the PC).  `fetch16(i)` returns the
 * 16-bit parcel at byte offset 2*i from the PC within the same page, or -1 past
 * the page end.  `first32` (if given) is the first instruction when it was
 * fetched by the hart across a page boundary; such a block holds only it.
 */
export function translate(fetch16: (index: number) => number, first32?: number): TranslatedBlock {
  const b = new BlockSource();
  const scan = d.scanBlock(fetch16, first32, (inst, len, pc, k) => emitInstruction(b, inst, len, pc, k), (raw, pc, k) => {
    // mtval = the faulting instruction's bits (priv spec §3.1.16), 16 of them for RVC.
    b.emit(`${b.writeback()}return X.trap(2,${raw},0,${b.pc(pc).join(',')},n+${k});`);
  });
  if (scan.fallthrough) b.exitTo(scan.end, scan.count);
  return { source: b.source(), count: scan.count };
}

/** Names the generated code uses; the hart passes the values in this order. */
export const BLOCK_ENV_NAMES = [
  'R', 'S8', 'U8', 'S16', 'U16', 'S32', 'RL', 'RH', 'RO', 'WL', 'WH', 'WO', 'F', 'HI', 'X',
  ...M_HELPERS,
] as const;

type Factory = (...a: unknown[]) => () => number;
/**
 * Factories by source.  The source is position-independent, so relocated
 * code and other harts reuse one factory: no second parse, and the closures
 * share V8's feedback and optimized code.  Bounded: dropped when full.
 */
const factories = new Map<string, Factory>();
const MAX_FACTORIES = 32768;

/** Compile a translated block into a closure over the hart's views, for the block at (pcl, pch). */
export function compile(block: TranslatedBlock, env: readonly unknown[], pcl: number, pch: number): () => number {
  let factory = factories.get(block.source);
  if (!factory) {
    if (factories.size >= MAX_FACTORIES) factories.clear();
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    factory = new Function(...BLOCK_ENV_NAMES, 'pl', 'ph', block.source) as Factory;
    factories.set(block.source, factory);
  }
  return factory(...env, pcl, pch);
}
