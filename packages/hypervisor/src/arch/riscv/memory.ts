/**
 * Guest physical memory: one RAM region backed by a SharedArrayBuffer (shared
 * by every vCPU of a guest, on whatever thread) and MMIO regions served by
 * callbacks.  Like TinyEMU's PhysMemoryMap: RAM is a typed-array hit, a
 * device is (read(offset, size), write(offset, size, value)).
 */
import { XenError } from '@xenbox/abi';

/** What an MMIO callback may answer besides a value. */
export const MMIO = {
  /** Done. */
  OK: 0,
  /**
   * Not done here: leave the run loop with reason 'mmio' so the caller can
   * forward the access (an ioreq to a device model).  The instruction is
   * restarted on resume and consumes the answer given to Hart.completeMmio.
   */
  EXIT: 1,
  /** Done, and the machine is to stop (test device poweroff/reset). */
  STOP: 2,
} as const;
export type MmioAction = (typeof MMIO)[keyof typeof MMIO];

export interface MmioDevice {
  /**
   * `size` is 1, 2 or 4 (8-byte accesses arrive as two 4-byte ones, low
   * first).  Returns the value, or MMIO_READ_EXIT to leave the run loop.
   */
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): MmioAction | void;
}

export interface MmioRegion {
  name: string;
  base: number;
  size: number;
  device: MmioDevice;
}

/** What a device's read returns to ask for an exit (like MMIO.EXIT); it is not an int32, so never data. */
export const MMIO_READ_EXIT = 0x1_0000_0001;

export class GuestRam {
  readonly u8: Uint8Array;
  readonly i8: Int8Array;
  readonly u16: Uint16Array;
  readonly i16: Int16Array;
  readonly i32: Int32Array;
  readonly i64: BigInt64Array;
  readonly size: number;

  constructor(readonly sab: SharedArrayBuffer, readonly base: number) {
    if (sab.byteLength % 4096 !== 0) throw new XenError('EINVAL', `guest RAM size ${sab.byteLength} is not a multiple of 4 KiB`);
    this.size = sab.byteLength;
    this.u8 = new Uint8Array(sab);
    this.i8 = new Int8Array(sab);
    this.u16 = new Uint16Array(sab);
    this.i16 = new Int16Array(sab);
    this.i32 = new Int32Array(sab);
    this.i64 = new BigInt64Array(sab);
  }

  static allocate(bytes: number, base = 0x8000_0000): GuestRam {
    if (bytes <= 0 || bytes > 0x7fff_f000) throw new XenError('EINVAL', `guest RAM size ${bytes} out of range (1 B .. 2 GiB)`);
    return new GuestRam(new SharedArrayBuffer(Math.ceil(bytes / 4096) * 4096), base);
  }

  /** Offset of a guest-physical address in RAM, or -1. */
  offsetOf(paddr: number, len = 1): number {
    const off = paddr - this.base;
    return off >= 0 && off + len <= this.size ? off : -1;
  }

  write(paddr: number, bytes: Uint8Array): void {
    const off = this.offsetOf(paddr, bytes.length);
    if (off < 0) throw new XenError('EFAULT', `0x${paddr.toString(16)}+${bytes.length} is outside guest RAM`);
    this.u8.set(bytes, off);
  }

  read(paddr: number, len: number): Uint8Array {
    const off = this.offsetOf(paddr, len);
    if (off < 0) throw new XenError('EFAULT', `0x${paddr.toString(16)}+${len} is outside guest RAM`);
    return this.u8.slice(off, off + len);
  }
}

/** The guest-physical address map: RAM plus MMIO regions. */
export class Bus {
  private readonly regions: MmioRegion[] = [];
  constructor(readonly ram: GuestRam) {}

  map(name: string, base: number, size: number, device: MmioDevice): void {
    for (const r of this.regions)
      if (base < r.base + r.size && r.base < base + size) throw new XenError('EEXIST', `MMIO region ${name} overlaps ${r.name}`);
    this.regions.push({ name, base, size, device });
  }

  unmap(name: string): void {
    const i = this.regions.findIndex((r) => r.name === name);
    if (i >= 0) this.regions.splice(i, 1);
  }

  /** The region holding [paddr, paddr+len), or undefined (an access fault). */
  find(paddr: number, len: number): MmioRegion | undefined {
    for (const r of this.regions) if (paddr >= r.base && paddr + len <= r.base + r.size) return r;
    return undefined;
  }

  list(): readonly MmioRegion[] {
    return this.regions;
  }
}
