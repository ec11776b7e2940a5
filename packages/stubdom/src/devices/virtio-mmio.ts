/**
 * A virtio-mmio transport slot (Virtio 1.2 §4.2.2, "MMIO Device Register
 * Layout"; QEMU hw/virtio/virtio-mmio.c), version 2 (non-legacy) registers.
 * The virt board has eight slots from 0x10001000, 0x1000 apart, slot n on
 * PLIC source n + 1.
 *
 * Without a backend the slot is empty as QEMU's is (virtio_mmio_read with
 * no vdev): MagicValue, Version and VendorID read back, DeviceID reads 0,
 * every other register 0 and writes are ignored; so U-Boot's and Linux's
 * probes (magic, version, device id) skip it.  Those four registers never
 * change, so they are mirrored: probing all eight slots costs no exit.
 *
 * With a backend (virtio-blk / virtio-net reaching blkback / netback come
 * later) the transport keeps the feature, queue and status registers and
 * hands QueueNotify and config accesses to it.
 */
import type { DeviceHost, MirroredRegister, MmioDeviceModel } from '../device.js';

/** Register offsets, Virtio 1.2 Table 4.1. */
export const VIRTIO_MMIO = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** "virt" in little-endian. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
/** QEMU's VIRT_VENDOR, "QEMU". */
export const VIRTIO_MMIO_VENDOR = 0x554d4551;
/** Non-legacy transport. */
export const VIRTIO_MMIO_VERSION = 2;
/** VIRTIO_F_VERSION_1 (bit 32): a modern device; declared once, in @xenbox/abi (virtio.ts). */
export { VIRTIO_F_VERSION_1 } from '@xenbox/abi';

/** A virtqueue's driver-set state (split virtqueue addresses, Virtio 1.2 §2.7). */
export interface VirtqueueState {
  num: number;
  ready: boolean;
  desc: bigint;
  driver: bigint;
  device: bigint;
}

/** A device behind the transport (virtio-blk, virtio-net, ...). */
export interface VirtioBackend {
  /** Virtio device ID (2 block, 1 network, 3 console). */
  readonly deviceId: number;
  readonly features: bigint;
  readonly queueMax: number;
  readonly queues: number;
  readConfig(offset: number, size: number): number;
  writeConfig(offset: number, size: number, value: number): void;
  /** The driver notified queue q (QueueNotify). */
  notify(q: number, state: VirtqueueState): void;
  /** The driver reset the device (Status = 0). */
  reset(): void;
}

export interface VirtioMmioOptions {
  base: number;
  irq: number;
  host: DeviceHost;
  backend?: VirtioBackend;
}

export class VirtioMmio implements MmioDeviceModel {
  readonly name = 'virtio-mmio';
  readonly size = 0x1000;
  /** Every read is synchronous (and drains posted writes first), so writes may be posted. */
  readonly postedWrites = true;
  readonly base: number;
  readonly irq: number;
  private readonly backend: VirtioBackend | undefined;
  private readonly host: DeviceHost;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  driverFeatures = 0n;
  private queueSel = 0;
  status = 0;
  private interruptStatus = 0;
  readonly queues: VirtqueueState[];

  constructor(opts: VirtioMmioOptions) {
    this.base = opts.base;
    this.irq = opts.irq;
    this.host = opts.host;
    this.backend = opts.backend;
    this.queues = Array.from({ length: opts.backend?.queues ?? 0 }, () => emptyQueue());
  }

  read(offset: number, size: number): number {
    if (offset >= VIRTIO_MMIO.CONFIG) return this.backend ? this.backend.readConfig(offset - VIRTIO_MMIO.CONFIG, size) : 0;
    if (size !== 4) return 0; // the spec allows only 32-bit access to the registers
    switch (offset) {
      case VIRTIO_MMIO.MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
      case VIRTIO_MMIO.VERSION:
        return VIRTIO_MMIO_VERSION;
      case VIRTIO_MMIO.VENDOR_ID:
        return VIRTIO_MMIO_VENDOR;
      case VIRTIO_MMIO.DEVICE_ID:
        return this.backend?.deviceId ?? 0;
    }
    const b = this.backend;
    if (!b) return 0;
    const q = this.queues[this.queueSel];
    switch (offset) {
      case VIRTIO_MMIO.DEVICE_FEATURES:
        return this.deviceFeaturesSel > 1 ? 0 : Number(BigInt.asUintN(32, b.features >> BigInt(32 * this.deviceFeaturesSel)));
      case VIRTIO_MMIO.QUEUE_NUM_MAX:
        return q ? b.queueMax : 0;
      case VIRTIO_MMIO.QUEUE_READY:
        return q?.ready ? 1 : 0;
      case VIRTIO_MMIO.INTERRUPT_STATUS:
        return this.interruptStatus;
      case VIRTIO_MMIO.STATUS:
        return this.status;
      case VIRTIO_MMIO.CONFIG_GENERATION:
        return 0;
    }
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    const b = this.backend;
    if (!b) return;
    if (offset >= VIRTIO_MMIO.CONFIG) return b.writeConfig(offset - VIRTIO_MMIO.CONFIG, size, value);
    if (size !== 4) return;
    const v = value >>> 0;
    const q = this.queues[this.queueSel];
    const lo = (x: bigint): bigint => (x & ~0xffff_ffffn) | BigInt(v);
    const hi = (x: bigint): bigint => (x & 0xffff_ffffn) | (BigInt(v) << 32n);
    switch (offset) {
      case VIRTIO_MMIO.DEVICE_FEATURES_SEL: this.deviceFeaturesSel = v; return;
      case VIRTIO_MMIO.DRIVER_FEATURES_SEL: this.driverFeaturesSel = v; return;
      case VIRTIO_MMIO.DRIVER_FEATURES:
        if (this.driverFeaturesSel <= 1) {
          const shift = BigInt(32 * this.driverFeaturesSel);
          this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(v) << shift);
        }
        return;
      case VIRTIO_MMIO.QUEUE_SEL: this.queueSel = v; return;
      case VIRTIO_MMIO.QUEUE_NUM: if (q) q.num = Math.min(v, b.queueMax); return;
      case VIRTIO_MMIO.QUEUE_READY: if (q) q.ready = (v & 1) === 1; return;
      case VIRTIO_MMIO.QUEUE_DESC_LOW: if (q) q.desc = lo(q.desc); return;
      case VIRTIO_MMIO.QUEUE_DESC_HIGH: if (q) q.desc = hi(q.desc); return;
      case VIRTIO_MMIO.QUEUE_DRIVER_LOW: if (q) q.driver = lo(q.driver); return;
      case VIRTIO_MMIO.QUEUE_DRIVER_HIGH: if (q) q.driver = hi(q.driver); return;
      case VIRTIO_MMIO.QUEUE_DEVICE_LOW: if (q) q.device = lo(q.device); return;
      case VIRTIO_MMIO.QUEUE_DEVICE_HIGH: if (q) q.device = hi(q.device); return;
      case VIRTIO_MMIO.QUEUE_NOTIFY: {
        const nq = this.queues[v];
        if (nq?.ready) b.notify(v, nq);
        return;
      }
      case VIRTIO_MMIO.INTERRUPT_ACK:
        this.interruptStatus &= ~v;
        this.updateIrq();
        return;
      case VIRTIO_MMIO.STATUS:
        if (v === 0) this.reset();
        else this.status = v;
        return;
    }
  }

  /** The backend used buffers of a queue (bit 0) or changed its config (bit 1): raise the slot's interrupt. */
  interrupt(bits: 1 | 2): void {
    this.interruptStatus |= bits;
    this.updateIrq();
  }

  mirror(): MirroredRegister[] {
    return [
      { offset: VIRTIO_MMIO.MAGIC_VALUE, size: 4, value: VIRTIO_MMIO_MAGIC },
      { offset: VIRTIO_MMIO.VERSION, size: 4, value: VIRTIO_MMIO_VERSION },
      { offset: VIRTIO_MMIO.DEVICE_ID, size: 4, value: this.backend?.deviceId ?? 0 },
      { offset: VIRTIO_MMIO.VENDOR_ID, size: 4, value: VIRTIO_MMIO_VENDOR },
    ];
  }

  private reset(): void {
    this.status = 0;
    this.driverFeatures = 0n;
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.interruptStatus = 0;
    for (let i = 0; i < this.queues.length; i++) this.queues[i] = emptyQueue();
    this.backend?.reset();
    this.updateIrq();
  }

  private updateIrq(): void {
    this.host.setIrq(this.irq, this.interruptStatus !== 0);
  }
}

function emptyQueue(): VirtqueueState {
  return { num: 0, ready: false, desc: 0n, driver: 0n, device: 0n };
}
