import { describe, expect, it } from 'vitest';
import { VIRTIO_MMIO, VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_VENDOR, VirtioMmio, type VirtioBackend, type VirtqueueState } from '@xenbox/stubdom';

const host = () => {
  const irqs: Array<[number, boolean]> = [];
  return { irqs, host: { setIrq: (s: number, l: boolean) => irqs.push([s, l]), consoleOutput: () => undefined, shutdown: () => undefined } };
};

describe('a virtio-mmio slot', () => {
  it('looks empty to a probe without a backend: magic, version 2, vendor, device id 0 (all mirrored)', () => {
    const v = new VirtioMmio({ base: 0x10001000, irq: 1, host: host().host });
    expect(v.read(VIRTIO_MMIO.MAGIC_VALUE, 4)).toBe(VIRTIO_MMIO_MAGIC);
    expect(v.read(VIRTIO_MMIO.VERSION, 4)).toBe(2);
    expect(v.read(VIRTIO_MMIO.DEVICE_ID, 4)).toBe(0);
    expect(v.read(VIRTIO_MMIO.VENDOR_ID, 4)).toBe(VIRTIO_MMIO_VENDOR);
    expect(v.read(VIRTIO_MMIO.STATUS, 4)).toBe(0);
    v.write(VIRTIO_MMIO.STATUS, 4, 1);
    expect(v.read(VIRTIO_MMIO.STATUS, 4)).toBe(0);
    expect(v.mirror().map((r) => [r.offset, r.value])).toEqual([[0, VIRTIO_MMIO_MAGIC], [4, 2], [8, 0], [0xc, VIRTIO_MMIO_VENDOR]]);
  });

  it('with a backend keeps features, queue addresses and status, and hands notifies over', () => {
    const notified: Array<[number, VirtqueueState]> = [];
    let resets = 0;
    const backend: VirtioBackend = {
      deviceId: 2, features: (1n << 32n) | 0x40n, queueMax: 128, queues: 1,
      readConfig: (o) => (o === 0 ? 16384 : 0), writeConfig: () => undefined,
      notify: (q, s) => notified.push([q, { ...s }]), reset: () => void resets++,
    };
    const { irqs, host: h } = host();
    const v = new VirtioMmio({ base: 0x10008000, irq: 8, host: h, backend });
    expect(v.read(VIRTIO_MMIO.DEVICE_ID, 4)).toBe(2);
    v.write(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 4, 1);
    expect(v.read(VIRTIO_MMIO.DEVICE_FEATURES, 4)).toBe(1);
    v.write(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 4, 1);
    v.write(VIRTIO_MMIO.DRIVER_FEATURES, 4, 1);
    expect(v.driverFeatures).toBe(1n << 32n);
    v.write(VIRTIO_MMIO.QUEUE_SEL, 4, 0);
    expect(v.read(VIRTIO_MMIO.QUEUE_NUM_MAX, 4)).toBe(128);
    v.write(VIRTIO_MMIO.QUEUE_NUM, 4, 64);
    v.write(VIRTIO_MMIO.QUEUE_DESC_LOW, 4, 0x84000000);
    v.write(VIRTIO_MMIO.QUEUE_DESC_HIGH, 4, 0);
    v.write(VIRTIO_MMIO.QUEUE_DRIVER_LOW, 4, 0x84001000);
    v.write(VIRTIO_MMIO.QUEUE_DEVICE_LOW, 4, 0x84002000);
    v.write(VIRTIO_MMIO.QUEUE_READY, 4, 1);
    v.write(VIRTIO_MMIO.STATUS, 4, 0xf);
    expect(v.read(VIRTIO_MMIO.STATUS, 4)).toBe(0xf);
    expect(v.read(VIRTIO_MMIO.CONFIG, 4)).toBe(16384);
    v.write(VIRTIO_MMIO.QUEUE_NOTIFY, 4, 0);
    expect(notified).toEqual([[0, { num: 64, ready: true, desc: 0x84000000n, driver: 0x84001000n, device: 0x84002000n }]]);
    v.interrupt(1);
    expect(irqs.at(-1)).toEqual([8, true]);
    expect(v.read(VIRTIO_MMIO.INTERRUPT_STATUS, 4)).toBe(1);
    v.write(VIRTIO_MMIO.INTERRUPT_ACK, 4, 1);
    expect(irqs.at(-1)).toEqual([8, false]);
    v.write(VIRTIO_MMIO.STATUS, 4, 0);
    expect(resets).toBe(1);
    expect(v.read(VIRTIO_MMIO.QUEUE_READY, 4)).toBe(0);
  });
});
