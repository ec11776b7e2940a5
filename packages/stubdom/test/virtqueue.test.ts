import { describe, expect, it } from 'vitest';
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  encodeVirtqDesc,
  virtqAvail,
  vringNeedEvent,
} from '@xenbox/abi';
import { Virtqueue } from '@xenbox/stubdom';
import { FakeDriverQueue, FakeRam } from './helpers/virtio-driver.js';

function setup(num = 8, opts = {}) {
  const ram = new FakeRam();
  const drv = new FakeDriverQueue(ram, num);
  return { ram, drv, q: new Virtqueue(ram, drv.state, opts) };
}

describe('a split virtqueue (device side)', () => {
  it('pops a chain as its readable then writable buffers, and null when the driver published nothing more', async () => {
    const { drv, q } = setup();
    const a = drv.alloc(16);
    const b = drv.alloc(512);
    const c = drv.alloc(1);
    const head = drv.add([{ addr: a, len: 16 }, { addr: b, len: 512, write: true }, { addr: c, len: 1, write: true }]);
    expect(await q.popAvail()).toEqual({ head, readable: [{ addr: a, len: 16 }], writable: [{ addr: b, len: 512 }, { addr: c, len: 1 }] });
    expect(await q.popAvail()).toBeNull();
  });

  it('serves every chain published before one read of the driver area, in avail order', async () => {
    const { ram, drv, q } = setup(4);
    const bufs = [drv.alloc(8), drv.alloc(8), drv.alloc(8)];
    const heads = bufs.map((addr) => drv.add([{ addr, len: 8 }]));
    const reads = ram.reads;
    const got = [await q.popAvail(), await q.popAvail(), await q.popAvail()];
    expect(got.map((c) => c!.head)).toEqual(heads);
    expect(ram.reads - reads).toBe(2); // the avail area and the descriptor table, once
    for (const c of got) await q.pushUsed(c!.head, 0);
    expect(drv.usedIdx).toBe(3);
    expect([drv.used(0), drv.used(1), drv.used(2)].map((u) => u.id)).toEqual(heads);
  });

  it('keeps going across the 16-bit wrap of the avail and used indexes', async () => {
    const { drv, q } = setup(4);
    const buf = drv.alloc(8);
    const n = 65_540;
    for (let i = 0; i < n; i++) {
      drv.add([{ addr: buf, len: 8, write: true }]);
      const c = await q.popAvail();
      await q.pushUsed(c!.head, i & 7);
    }
    expect(await q.popAvail()).toBeNull();
    expect(drv.usedIdx).toBe(n & 0xffff);
    expect(drv.used(n - 1).len).toBe((n - 1) & 7);
  });

  it('writes the used element before the used index, with the length the device wrote', async () => {
    const { drv, q } = setup();
    const head = drv.add([{ addr: drv.alloc(100), len: 100, write: true }]);
    const c = await q.popAvail();
    await q.pushUsed(c!.head, 42);
    expect(drv.usedIdx).toBe(1);
    expect(drv.used(0)).toEqual({ id: head, len: 42 });
  });

  it('follows an indirect table when VIRTIO_F_INDIRECT_DESC was negotiated, and refuses one when it was not', async () => {
    for (const indirect of [true, false]) {
      const { ram, drv, q } = setup(8, { indirect });
      const a = drv.alloc(16);
      const b = drv.alloc(1);
      const table = drv.alloc(32);
      ram.poke(table, encodeVirtqDesc({ addr: a, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 }));
      ram.poke(table + 16n, encodeVirtqDesc({ addr: b, len: 1, flags: VIRTQ_DESC_F_WRITE, next: 0 }));
      drv.desc(3, { addr: table, len: 32, flags: VIRTQ_DESC_F_INDIRECT });
      drv.publish(3);
      if (indirect) expect(await q.popAvail()).toEqual({ head: 3, readable: [{ addr: a, len: 16 }], writable: [{ addr: b, len: 1 }] });
      else await expect(q.popAvail()).rejects.toThrow(/EINVAL: .*not negotiated/);
    }
  });

  it('refuses a looping chain (EINVAL), marks itself broken and pops nothing after', async () => {
    const { drv, q } = setup();
    const a = drv.alloc(8);
    drv.desc(0, { addr: a, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 1 });
    drv.desc(1, { addr: a, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 0 });
    drv.publish(0);
    await expect(q.popAvail()).rejects.toThrow(/EINVAL: .*loops/);
    expect(q.broken).toMatch(/loops/);
    drv.add([{ addr: a, len: 8 }]);
    expect(await q.popAvail()).toBeNull();
  });

  it('refuses a head or next index past the table, and an indirect table nested or mis-sized', async () => {
    const cases: Array<[string, (d: FakeDriverQueue, ram: FakeRam) => void, RegExp]> = [
      ['head past the table', (d) => d.publish(9), /descriptor 9 .*past the table/],
      ['next past the table', (d) => {
        d.desc(0, { addr: d.alloc(8), len: 8, flags: VIRTQ_DESC_F_NEXT, next: 200 });
        d.publish(0);
      }, /descriptor 200 .*past the table/],
      ['nested indirect', (d, ram) => {
        const t = d.alloc(16);
        ram.poke(t, encodeVirtqDesc({ addr: t, len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 }));
        d.desc(0, { addr: t, len: 16, flags: VIRTQ_DESC_F_INDIRECT });
        d.publish(0);
      }, /INDIRECT descriptor inside/],
      ['indirect of 10 bytes', (d) => {
        d.desc(0, { addr: d.alloc(16), len: 10, flags: VIRTQ_DESC_F_INDIRECT });
        d.publish(0);
      }, /not a whole number of descriptors/],
      ['indirect with NEXT', (d) => {
        d.desc(0, { addr: d.alloc(16), len: 16, flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, next: 1 });
        d.publish(0);
      }, /INDIRECT and NEXT/],
      ['readable after writable', (d) => d.add([{ addr: d.alloc(1), len: 1, write: true }, { addr: d.alloc(1), len: 1 }]), /readable buffer after a device-writable/],
      ['avail idx 100 ahead of a queue of 8', (d) => d.publish(0, 100), /more than the queue size 8/],
      ['indirect table outside guest memory', (d) => {
        d.desc(0, { addr: 0x1000n, len: 32, flags: VIRTQ_DESC_F_INDIRECT });
        d.publish(0);
      }, /no guest memory/],
    ];
    for (const [what, make, re] of cases) {
      const { ram, drv, q } = setup(8, { indirect: true });
      make(drv, ram);
      await expect(q.popAvail(), what).rejects.toThrow(re);
      expect(q.broken, what).not.toBeNull();
    }
  });

  it('caps what one chain may describe (E2BIG)', async () => {
    const { drv, q } = setup(8, { maxBytes: 4096 });
    drv.add([{ addr: drv.alloc(4096), len: 4096 }, { addr: drv.alloc(1), len: 1, write: true }]);
    await expect(q.popAvail()).rejects.toThrow(/E2BIG: .*more than 4096 bytes/);
  });

  it('asks for an interrupt unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT', async () => {
    const { drv, q } = setup();
    drv.add([{ addr: drv.alloc(1), len: 1, write: true }]);
    drv.add([{ addr: drv.alloc(1), len: 1, write: true }]);
    const c1 = await q.popAvail();
    const c2 = await q.popAvail();
    await q.pushUsed(c1!.head, 1);
    expect(q.takeInterrupt()).toBe(true);
    expect(q.takeInterrupt()).toBe(false);
    drv.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
    await q.pushUsed(c2!.head, 1);
    expect(q.takeInterrupt()).toBe(false);
  });

  it('with VIRTIO_F_EVENT_IDX interrupts only when the used index passes used_event, and publishes avail_event', async () => {
    const { ram, drv, q } = setup(8, { eventIdx: true });
    const usedEvent = drv.state.driver + BigInt(virtqAvail.usedEvent(8));
    for (let i = 0; i < 3; i++) drv.add([{ addr: drv.alloc(1), len: 1, write: true }]);
    ram.setU16(usedEvent, 2); // "interrupt me once the third buffer is used"
    const cs = [await q.popAvail(), await q.popAvail(), await q.popAvail()];
    expect(await q.popAvail()).toBeNull();
    expect(ram.u16(drv.state.device + 4n + 8n * 8n)).toBe(3); // avail_event = where we stopped
    await q.pushUsed(cs[0]!.head, 1);
    await q.pushUsed(cs[1]!.head, 1);
    expect(q.takeInterrupt()).toBe(false);
    await q.pushUsed(cs[2]!.head, 1);
    expect(q.takeInterrupt()).toBe(true);
    expect(vringNeedEvent(2, 3, 2)).toBe(true);
    expect(vringNeedEvent(5, 3, 2)).toBe(false);
  });
});
