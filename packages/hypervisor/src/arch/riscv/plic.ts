/**
 * The platform-level interrupt controller (RISC-V PLIC spec 1.0.0, the
 * "sifive,plic-1.0.0" of the virt board): priorities, pending bits, per
 * context enables, thresholds and claim/complete.  Context 2h is hart h's
 * M-mode (drives MEIP), context 2h+1 its S-mode (drives SEIP).
 *
 * Sources are level-triggered, as on QEMU's virt: a device sets its line
 * with setLevel(); while a source is claimed it does not pend again, and on
 * completion it pends again if its line is still high.
 * State is in a SharedArrayBuffer so device threads and vCPU threads agree.
 */
import type { MmioDevice } from './memory.js';
import { setInterruptPending, type VcpuState } from './vcpu-state.js';
import { IRQ } from './trap.js';
import { MAX_HARTS } from './clint.js';
import { VIRT_BOARD } from '@xenbox/abi';

export const PLIC_SIZE = VIRT_BOARD.PLIC_SIZE;
/** Number of interrupt sources (ids 1..PLIC_NDEV), the virt board's riscv,ndev. */
export const PLIC_NDEV = VIRT_BOARD.PLIC_NDEV;
const WORDS = 4; // bitmap words covering ids 0..127
const MAX_CONTEXTS = 2 * MAX_HARTS;

const PRIORITY = 0;
const PENDING = 128;
const LEVEL = PENDING + WORDS;
const CLAIMED = LEVEL + WORDS;
const ENABLE = CLAIMED + WORDS;
const THRESHOLD = ENABLE + MAX_CONTEXTS * WORDS;
const PLIC_WORDS = THRESHOLD + MAX_CONTEXTS;

export class Plic implements MmioDevice {
  readonly sab: SharedArrayBuffer;
  private readonly s: Int32Array;
  private readonly harts: (VcpuState | undefined)[] = [];

  constructor(sab?: SharedArrayBuffer) {
    this.sab = sab ?? new SharedArrayBuffer(PLIC_WORDS * 4);
    this.s = new Int32Array(this.sab);
  }

  attach(hart: VcpuState): void {
    this.harts[hart.hartid] = hart;
    this.update();
  }

  /** Set the level of interrupt line `id` (1..PLIC_NDEV). */
  setLevel(id: number, high: boolean): void {
    if (id < 1 || id > PLIC_NDEV) return;
    const w = id >> 5, bit = 1 << (id & 31);
    if (high) {
      Atomics.or(this.s, LEVEL + w, bit);
      if ((Atomics.load(this.s, CLAIMED + w) & bit) === 0) Atomics.or(this.s, PENDING + w, bit);
    } else {
      Atomics.and(this.s, LEVEL + w, ~bit);
      Atomics.and(this.s, PENDING + w, ~bit);
    }
    this.update();
  }

  /** The best claimable source of a context, or 0. */
  private best(ctx: number): number {
    const threshold = this.s[THRESHOLD + ctx]!;
    let bestId = 0, bestPrio = threshold;
    for (let w = 0; w < WORDS; w++) {
      let bits = Atomics.load(this.s, PENDING + w) & this.s[ENABLE + ctx * WORDS + w]!;
      while (bits) {
        const b = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const id = w * 32 + b;
        const prio = this.s[PRIORITY + id]!;
        if (prio > bestPrio) { bestPrio = prio; bestId = id; }
      }
    }
    return bestId;
  }

  private update(): void {
    for (let h = 0; h < this.harts.length; h++) {
      const hart = this.harts[h];
      if (!hart) continue;
      setInterruptPending(hart, IRQ.MEI, this.best(2 * h) !== 0);
      setInterruptPending(hart, IRQ.SEI, this.best(2 * h + 1) !== 0);
    }
  }

  private claim(ctx: number): number {
    const id = this.best(ctx);
    if (id) {
      const w = id >> 5, bit = 1 << (id & 31);
      Atomics.and(this.s, PENDING + w, ~bit);
      Atomics.or(this.s, CLAIMED + w, bit);
      this.update();
    }
    return id;
  }

  private complete(id: number): void {
    if (id < 1 || id > PLIC_NDEV) return;
    const w = id >> 5, bit = 1 << (id & 31);
    Atomics.and(this.s, CLAIMED + w, ~bit);
    if (Atomics.load(this.s, LEVEL + w) & bit) Atomics.or(this.s, PENDING + w, bit);
    this.update();
  }

  read(offset: number, size: number): number {
    if (size !== 4) return 0;
    if (offset < 0x1000) return offset >> 2 <= PLIC_NDEV ? this.s[PRIORITY + (offset >> 2)]! : 0;
    if (offset >= 0x1000 && offset < 0x1000 + 4 * WORDS) return Atomics.load(this.s, PENDING + ((offset - 0x1000) >> 2));
    if (offset >= 0x2000 && offset < 0x200000) {
      const ctx = (offset - 0x2000) >> 7, w = ((offset - 0x2000) & 0x7f) >> 2;
      return ctx < MAX_CONTEXTS && w < WORDS ? this.s[ENABLE + ctx * WORDS + w]! : 0;
    }
    if (offset >= 0x200000) {
      const ctx = (offset - 0x200000) >> 12, reg = offset & 0xfff;
      if (ctx >= MAX_CONTEXTS) return 0;
      if (reg === 0) return this.s[THRESHOLD + ctx]!;
      if (reg === 4) return this.claim(ctx);
    }
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    if (size !== 4) return;
    if (offset < 0x1000) {
      const id = offset >> 2;
      if (id >= 1 && id <= PLIC_NDEV) this.s[PRIORITY + id] = value & 7;
    } else if (offset >= 0x2000 && offset < 0x200000) {
      const ctx = (offset - 0x2000) >> 7, w = ((offset - 0x2000) & 0x7f) >> 2;
      if (ctx < MAX_CONTEXTS && w < WORDS) this.s[ENABLE + ctx * WORDS + w] = w === 0 ? value & ~1 : value; // source 0 does not exist
    } else if (offset >= 0x200000) {
      const ctx = (offset - 0x200000) >> 12, reg = offset & 0xfff;
      if (ctx >= MAX_CONTEXTS) return;
      if (reg === 0) this.s[THRESHOLD + ctx] = value & 7;
      else if (reg === 4) this.complete(value);
    }
    this.update();
  }
}
