/**
 * The ioreq page of an HVM guest: one SharedArrayBuffer shared by the main
 * thread and every pCPU worker that runs the guest's vCPUs, so the common
 * MMIO accesses never leave the pCPU (DESIGN §10, packages/abi/src/ioreq.ts):
 *
 * - the register mirror: (addr, size, value) entries the device model keeps
 *   current; a read of a mirrored register is answered in the worker;
 * - the buffered-write ring: writes to `posted` ranges are queued here and
 *   the vCPU goes on (Xen's buffered_iopage_t: read_pointer/write_pointer
 *   over IOREQ_BUFFER_SLOT_NUM slots, xen/include/public/hvm/ioreq.h); the
 *   main thread drains it into one `hvm.ioreq` event per batch, and always
 *   before it forwards a synchronous request, so the device model sees the
 *   guest's accesses in order.  A full ring makes the write synchronous.
 * - a doorbell word the worker notifies when the ring goes non-empty (the
 *   buffered ioreq event channel).
 *
 * Values are at most 32 bits: the Bus hands devices 8-byte accesses as two
 * 4-byte ones.
 */
import { MMIO, MMIO_READ_EXIT, type MmioAction, type MmioDevice } from '../arch/riscv/memory.js';

const H = {
  /** Bumped whenever mirror entries or ranges are added/reset: workers rebuild their index. */
  GEN: 0,
  NMIRROR: 1,
  PROD: 2,
  CONS: 3,
  DOORBELL: 4,
  NRANGES: 5,
  /** Statistics, written by workers without atomics (approximate under contention). */
  LOCAL_READS: 6,
  POSTED_WRITES: 7,
  /** Producers' spin lock over the ring (several vCPUs may post at once). */
  LOCK: 8,
} as const;

export const IOREQ_PAGE_RANGES = 16;
export const IOREQ_PAGE_MIRRORS = 128;
/** IOREQ_BUFFER_SLOT_NUM is 511 in Xen; a power of two here. */
export const IOREQ_BUFFER_SLOTS = 512;

const RANGES = 16;
const MIRROR = RANGES + IOREQ_PAGE_RANGES * 2;
const RING = MIRROR + IOREQ_PAGE_MIRRORS * 3;
const WORDS = RING + IOREQ_BUFFER_SLOTS * 3;

export class IoreqPage {
  readonly i32: Int32Array;
  /** Main thread's index of mirror entries: `${addr}/${size}` -> entry. */
  private readonly index = new Map<string, number>();

  constructor(readonly sab: SharedArrayBuffer = new SharedArrayBuffer(WORDS * 4)) {
    this.i32 = new Int32Array(sab);
  }

  // ------------------------------------------------------------ main thread

  /** Writes in these ranges are posted (buffered) instead of stopping the vCPU. */
  setPostedRanges(ranges: Array<{ base: number; size: number }>): void {
    if (ranges.length > IOREQ_PAGE_RANGES) throw new RangeError(`at most ${IOREQ_PAGE_RANGES} posted ranges`);
    ranges.forEach((r, i) => {
      this.i32[RANGES + 2 * i] = r.base | 0;
      this.i32[RANGES + 2 * i + 1] = r.size | 0;
    });
    Atomics.store(this.i32, H.NRANGES, ranges.length);
    Atomics.add(this.i32, H.GEN, 1);
  }

  /** Set (or add) a mirrored register; false if the mirror is full. */
  setMirror(addr: number, size: number, value: number): boolean {
    const key = `${addr}/${size}`;
    let e = this.index.get(key);
    if (e === undefined) {
      e = this.i32[H.NMIRROR]!;
      if (e >= IOREQ_PAGE_MIRRORS) return false;
      this.i32[MIRROR + 3 * e] = addr | 0;
      this.i32[MIRROR + 3 * e + 1] = size;
      Atomics.store(this.i32, MIRROR + 3 * e + 2, value | 0);
      this.index.set(key, e);
      Atomics.store(this.i32, H.NMIRROR, e + 1);
      Atomics.add(this.i32, H.GEN, 1);
      return true;
    }
    Atomics.store(this.i32, MIRROR + 3 * e + 2, value | 0);
    return true;
  }

  get mirrored(): number {
    return this.i32[H.NMIRROR]!;
  }

  /** Forget the mirror and the posted ranges (the server went away): every access exits again. */
  reset(): void {
    this.index.clear();
    Atomics.store(this.i32, H.NMIRROR, 0);
    Atomics.store(this.i32, H.NRANGES, 0);
    Atomics.add(this.i32, H.GEN, 1);
  }

  /** Take the queued writes, oldest first, as flat [addr, size, value]*. */
  drain(): number[] {
    const prod = Atomics.load(this.i32, H.PROD);
    let cons = this.i32[H.CONS]!;
    const out: number[] = [];
    while (cons !== prod) {
      const s = RING + 3 * (cons & (IOREQ_BUFFER_SLOTS - 1));
      out.push(this.i32[s]! >>> 0, this.i32[s + 1]!, this.i32[s + 2]! >>> 0);
      cons = (cons + 1) | 0;
    }
    Atomics.store(this.i32, H.CONS, cons);
    return out;
  }

  /** Resolves when a worker rang the doorbell (the ring went non-empty); clears it. */
  async doorbell(): Promise<void> {
    for (;;) {
      if (Atomics.compareExchange(this.i32, H.DOORBELL, 1, 0) === 1) return;
      const w = waitAsync(this.i32, H.DOORBELL, 0);
      if (w.async) await w.value;
    }
  }

  /** Ring the doorbell from the main thread (wake a drain loop to stop it). */
  ring(): void {
    Atomics.store(this.i32, H.DOORBELL, 1);
    Atomics.notify(this.i32, H.DOORBELL);
  }

  stats(): { localReads: number; postedWrites: number } {
    return { localReads: this.i32[H.LOCAL_READS]! >>> 0, postedWrites: this.i32[H.POSTED_WRITES]! >>> 0 };
  }
}

/**
 * The pCPU worker's side: an MmioDevice for one ioreq window (the UART, the
 * test device, the virtio-mmio slots) at guest-physical `base`.  Mirrored
 * reads and posted writes are done here; everything else exits to the main
 * thread (MMIO_READ_EXIT / MMIO.EXIT), which forwards it to the device model.
 */
export class IoreqWindow implements MmioDevice {
  private gen = -1;
  /** addr -> mirror entry (one size per address is all the virt devices need; the size is checked). */
  private mirror = new Map<number, number>();
  private ranges: Array<[number, number]> = [];
  private readonly i32: Int32Array;

  constructor(page: SharedArrayBuffer, private readonly base: number) {
    this.i32 = new Int32Array(page);
  }

  private refresh(): void {
    const gen = Atomics.load(this.i32, H.GEN);
    if (gen === this.gen) return;
    this.gen = gen;
    this.mirror = new Map();
    const n = Atomics.load(this.i32, H.NMIRROR);
    for (let e = 0; e < n; e++) this.mirror.set(this.i32[MIRROR + 3 * e]! >>> 0, e);
    this.ranges = [];
    const r = Atomics.load(this.i32, H.NRANGES);
    for (let i = 0; i < r; i++) this.ranges.push([this.i32[RANGES + 2 * i]! >>> 0, this.i32[RANGES + 2 * i + 1]! >>> 0]);
  }

  read(offset: number, size: number): number {
    this.refresh();
    const e = this.mirror.get(this.base + offset);
    if (e === undefined || this.i32[MIRROR + 3 * e + 1] !== size) return MMIO_READ_EXIT;
    this.i32[H.LOCAL_READS] = (this.i32[H.LOCAL_READS]! + 1) | 0;
    const v = Atomics.load(this.i32, MIRROR + 3 * e + 2);
    return size === 4 ? v : v & (size === 1 ? 0xff : 0xffff);
  }

  write(offset: number, size: number, value: number): MmioAction {
    this.refresh();
    const addr = this.base + offset;
    if (!this.ranges.some(([b, s]) => addr >= b && addr - b < s)) return MMIO.EXIT;
    const i32 = this.i32;
    while (Atomics.compareExchange(i32, H.LOCK, 0, 1) !== 0);
    const prod = i32[H.PROD]!;
    if (((prod - Atomics.load(i32, H.CONS)) | 0) >= IOREQ_BUFFER_SLOTS) {
      Atomics.store(i32, H.LOCK, 0);
      return MMIO.EXIT; // full: synchronous, after the main thread drained the ring
    }
    const s = RING + 3 * (prod & (IOREQ_BUFFER_SLOTS - 1));
    i32[s] = addr | 0;
    i32[s + 1] = size;
    i32[s + 2] = value | 0;
    Atomics.store(i32, H.PROD, (prod + 1) | 0);
    Atomics.store(i32, H.LOCK, 0);
    i32[H.POSTED_WRITES] = (i32[H.POSTED_WRITES]! + 1) | 0;
    if (Atomics.compareExchange(i32, H.DOORBELL, 0, 1) === 0) Atomics.notify(i32, H.DOORBELL);
    return MMIO.OK;
  }
}

/** Atomics.waitAsync (Node 16+; the ES2024 lib typing is not enabled in this workspace). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, i: number, v: number, t?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}).waitAsync;
