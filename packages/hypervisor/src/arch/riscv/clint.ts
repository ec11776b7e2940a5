/**
 * The CLINT (SiFive core-local interruptor, = ACLINT MSWI + MTIMER as QEMU's
 * virt board lays it out): msip[hart] at 0x0000 + 4*hart, mtimecmp[hart] at
 * 0x4000 + 8*hart, mtime at 0xbff8.  mtime counts at 10 MHz from the host's
 * monotonic clock (timebase-frequency 10000000 in the device tree).
 *
 * State lives in a SharedArrayBuffer so every vCPU thread sees the same
 * comparators; the hart samples mtime vs. its mtimecmp at each poll and sets
 * MTIP itself, which keeps the timer off the hot path.
 */
import type { MmioDevice } from './memory.js';
import { setInterruptPending, W, type VcpuState } from './vcpu-state.js';
import { IRQ } from './trap.js';
import { VIRT_BOARD } from '@xenbox/abi';

export const CLINT_SIZE = VIRT_BOARD.CLINT_SIZE;
export const MTIME_HZ = 10_000_000;
const MSIP_BASE = 0x0000;
const MTIMECMP_BASE = 0x4000;
const MTIME = 0xbff8;
export const MAX_HARTS = 64;

/** Layout: f64[0] = epoch (ms, performance.timeOrigin-based); i32 from byte 16: msip[64], then mtimecmp lo/hi[64]. */
const CLINT_BYTES = 16 + MAX_HARTS * 4 + MAX_HARTS * 8;

export class Clint implements MmioDevice {
  readonly sab: SharedArrayBuffer;
  private readonly epoch: Float64Array;
  private readonly msip: Int32Array;
  private readonly cmp: Int32Array;
  /** The mtime sampled by a low-word read, so the high-word read that follows matches it. */
  private latched = 0;
  private readonly harts: (VcpuState | undefined)[] = [];

  constructor(sab?: SharedArrayBuffer) {
    this.sab = sab ?? new SharedArrayBuffer(CLINT_BYTES);
    this.epoch = new Float64Array(this.sab, 0, 1);
    this.msip = new Int32Array(this.sab, 16, MAX_HARTS);
    this.cmp = new Int32Array(this.sab, 16 + MAX_HARTS * 4, MAX_HARTS * 2);
    if (!sab) {
      this.epoch[0] = performance.timeOrigin + performance.now();
      this.cmp.fill(-1); // mtimecmp resets to "never"
    }
  }

  /** Let the CLINT raise MSIP on this hart (mtimecmp is polled by the hart itself). */
  attach(hart: VcpuState): void {
    this.harts[hart.hartid] = hart;
  }

  /** The epoch (ms, timeOrigin-based) of the CLINT in `sab`: mtime counts from it. */
  static epochOf(sab: SharedArrayBuffer): number {
    return new Float64Array(sab, 0, 1)[0]!;
  }

  /** mtime now: 10 MHz ticks since the machine was created. */
  now(): number {
    return Math.floor((performance.timeOrigin + performance.now() - this.epoch[0]!) * (MTIME_HZ / 1000));
  }

  /** mtimecmp of a hart as a double (all ones reads as 2^64, "never"). */
  mtimecmp(hartid: number): number {
    return (this.cmp[2 * hartid + 1]! >>> 0) * 4294967296 + (this.cmp[2 * hartid]! >>> 0);
  }

  setMtimecmp(hartid: number, value: number): void {
    this.cmp[2 * hartid] = value % 4294967296 | 0;
    this.cmp[2 * hartid + 1] = Math.floor(value / 4294967296) | 0;
  }

  read(offset: number, size: number): number {
    if (offset >= MTIME && size === 4) {
      if (offset === MTIME) {
        this.latched = this.now();
        return this.latched % 4294967296 | 0;
      }
      return Math.floor(this.latched / 4294967296) | 0;
    }
    if (offset >= MTIMECMP_BASE && offset < MTIMECMP_BASE + 8 * MAX_HARTS && size === 4) {
      return this.cmp[(offset - MTIMECMP_BASE) >> 2]!;
    }
    if (offset < MSIP_BASE + 4 * MAX_HARTS && size === 4) return this.msip[offset >> 2]!;
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    if (size !== 4) return;
    if (offset >= MTIMECMP_BASE && offset < MTIMECMP_BASE + 8 * MAX_HARTS) {
      this.cmp[(offset - MTIMECMP_BASE) >> 2] = value;
      const hart = this.harts[(offset - MTIMECMP_BASE) >> 3];
      if (hart) Atomics.store(hart.i32, W.KICK, 1); // re-evaluate MTIP promptly
      return;
    }
    if (offset >= MTIME) {
      // Writing mtime moves the epoch so that mtime reads back as written (low or high word).
      const cur = this.now();
      const lo = offset === MTIME ? value >>> 0 : cur % 4294967296;
      const hi = offset === MTIME ? Math.floor(cur / 4294967296) : value >>> 0;
      this.epoch[0] = this.epoch[0]! + (cur - (hi * 4294967296 + lo)) / (MTIME_HZ / 1000);
      return;
    }
    if (offset < 4 * MAX_HARTS) {
      const hartid = offset >> 2;
      this.msip[hartid] = value & 1;
      const hart = this.harts[hartid];
      if (hart) setInterruptPending(hart, IRQ.MSI, (value & 1) !== 0);
    }
  }
}
