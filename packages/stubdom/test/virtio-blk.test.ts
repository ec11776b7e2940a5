import { describe, expect, it } from 'vitest';
import {
  VIRTIO_BLK_CONFIG,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_F_VERSION_1,
  VIRTIO_STATUS_DEVICE_NEEDS_RESET,
  VIRTQ_DESC_F_NEXT,
  XenError,
  encodeVirtioBlkReqHeader,
} from '@xenbox/abi';
import { VIRTIO_MMIO, VirtioBlk, VirtioMmio, type BlockDisk } from '@xenbox/stubdom';
import { FakeDriverQueue, FakeRam, until, type Buf } from './helpers/virtio-driver.js';

const SECTORS = 2048; // 1 MiB

/** An in-memory disk with Blkfront's shape. */
class MemDisk implements BlockDisk {
  readonly data = new Uint8Array(SECTORS * 512);
  flushes = 0;
  discards: Array<[number, number]> = [];
  failReads = false;
  /** Milliseconds a read of a sector waits (to finish requests out of order). */
  readDelay: (sector: number) => number = () => 0;
  constructor(readonly info = { sectors: SECTORS, sectorSize: 512, readOnly: false, cdrom: false, flush: true, discard: true }) {
    for (let i = 0; i < this.data.length; i++) this.data[i] = (i * 7 + (i >> 9)) & 0xff;
  }
  async read(sector: number, count: number): Promise<Uint8Array> {
    if (this.failReads) throw new XenError('EIO', 'BLKIF_RSP_ERROR');
    const ms = this.readDelay(sector);
    if (ms) await new Promise((r) => setTimeout(r, ms));
    return this.data.slice(sector * 512, (sector + count) * 512);
  }
  async write(sector: number, d: Uint8Array): Promise<void> {
    this.data.set(d, sector * 512);
  }
  async flush(): Promise<void> {
    this.flushes++;
  }
  async discard(sector: number, count: number): Promise<void> {
    this.discards.push([sector, count]);
  }
}

/** A virtio-blk device behind a real virtio-mmio slot, set up as a driver does (status, features, queue 0). */
function setup(info?: ConstructorParameters<typeof MemDisk>[0]) {
  const ram = new FakeRam();
  const disk = new MemDisk(info);
  const irqs: boolean[] = [];
  const blk = new VirtioBlk({ disk, mem: ram, serial: 'xenbox-hda' });
  const mmio = new VirtioMmio({ base: 0x10008000, irq: 8, backend: blk, host: { setIrq: (_s, l) => irqs.push(l), consoleOutput: () => undefined, shutdown: () => undefined } });
  blk.bindTransport(mmio);
  const drv = new FakeDriverQueue(ram, 16);
  const w = (off: number, v: number) => mmio.write(off, 4, v);
  const start = () => {
    w(VIRTIO_MMIO.STATUS, 1 | 2);
    w(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 1);
    w(VIRTIO_MMIO.DRIVER_FEATURES, 1); // VERSION_1
    w(VIRTIO_MMIO.STATUS, 1 | 2 | 8);
    w(VIRTIO_MMIO.QUEUE_SEL, 0);
    w(VIRTIO_MMIO.QUEUE_NUM, 16);
    w(VIRTIO_MMIO.QUEUE_DESC_LOW, Number(drv.state.desc & 0xffffffffn));
    w(VIRTIO_MMIO.QUEUE_DRIVER_LOW, Number(drv.state.driver & 0xffffffffn));
    w(VIRTIO_MMIO.QUEUE_DEVICE_LOW, Number(drv.state.device & 0xffffffffn));
    w(VIRTIO_MMIO.QUEUE_READY, 1);
    w(VIRTIO_MMIO.STATUS, 1 | 2 | 8 | 4);
  };
  start();
  /** Submit a request (header, optional out data, in data length) and wait for it to be used. */
  const request = async (type: number, sector: bigint, opts: { out?: Uint8Array; inLen?: number; splitHeader?: boolean } = {}) => {
    const before = drv.usedIdx;
    const hdr = encodeVirtioBlkReqHeader({ type, sector });
    const bufs: Buf[] = opts.splitHeader
      ? [{ addr: drv.alloc(4, hdr.subarray(0, 4)), len: 4 }, { addr: drv.alloc(12, hdr.subarray(4)), len: 12 }]
      : [{ addr: drv.alloc(16, hdr), len: 16 }];
    if (opts.out) bufs.push({ addr: drv.alloc(opts.out.length, opts.out), len: opts.out.length });
    const dataAt = opts.inLen ? drv.alloc(opts.inLen) : 0n;
    if (opts.inLen) bufs.push({ addr: dataAt, len: opts.inLen, write: true });
    const statusAt = drv.alloc(1, new Uint8Array([0xff]));
    bufs.push({ addr: statusAt, len: 1, write: true });
    const head = drv.add(bufs);
    w(VIRTIO_MMIO.QUEUE_NOTIFY, 0);
    await until('the request used', () => drv.usedIdx !== before);
    const used = drv.used(before);
    expect(used.id).toBe(head);
    return { status: ram.peek(statusAt, 1)[0], data: opts.inLen ? ram.peek(dataAt, opts.inLen) : null, len: used.len };
  };
  return { ram, disk, blk, mmio, drv, irqs, w, start, request };
}

describe('virtio-blk over a block disk', () => {
  it('offers a block device: id 2, VERSION_1, capacity in 512-byte sectors, blk_size, and RO only for read-only media', () => {
    const { mmio } = setup();
    expect(mmio.read(VIRTIO_MMIO.DEVICE_ID, 4)).toBe(2);
    mmio.write(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 4, 1);
    expect(BigInt(mmio.read(VIRTIO_MMIO.DEVICE_FEATURES, 4)) << 32n & VIRTIO_F_VERSION_1).toBe(VIRTIO_F_VERSION_1);
    expect(mmio.read(VIRTIO_MMIO.CONFIG + VIRTIO_BLK_CONFIG.CAPACITY, 4)).toBe(SECTORS);
    expect(mmio.read(VIRTIO_MMIO.CONFIG + VIRTIO_BLK_CONFIG.CAPACITY + 4, 4)).toBe(0);
    expect(mmio.read(VIRTIO_MMIO.CONFIG + VIRTIO_BLK_CONFIG.BLK_SIZE, 4)).toBe(512);
    const rw = setup().blk;
    expect(rw.features & VIRTIO_BLK_F_RO).toBe(0n);
    expect(rw.features & VIRTIO_BLK_F_DISCARD).toBe(VIRTIO_BLK_F_DISCARD);
    const cd = setup({ sectors: SECTORS, sectorSize: 512, readOnly: true, cdrom: true, flush: false, discard: false }).blk;
    expect(cd.features & VIRTIO_BLK_F_RO).toBe(VIRTIO_BLK_F_RO);
    expect(cd.features & VIRTIO_BLK_F_DISCARD).toBe(0n);
  });

  it('reads sectors into guest memory (VIRTIO_BLK_T_IN), used length = data + status, and raises the slot interrupt', async () => {
    const { disk, request, irqs, mmio } = setup();
    const r = await request(VIRTIO_BLK_T_IN, 3n, { inLen: 1024 });
    expect(r.status).toBe(VIRTIO_BLK_S_OK);
    expect(r.data).toEqual(disk.data.subarray(3 * 512, 5 * 512));
    expect(r.len).toBe(1025);
    expect(irqs.at(-1)).toBe(true);
    expect(mmio.read(VIRTIO_MMIO.INTERRUPT_STATUS, 4)).toBe(1);
  });

  it('writes sectors from guest memory (VIRTIO_BLK_T_OUT), whatever the header framing across descriptors', async () => {
    const { disk, request } = setup();
    const data = new Uint8Array(512).fill(0xab);
    expect((await request(VIRTIO_BLK_T_OUT, 10n, { out: data, splitHeader: true })).status).toBe(VIRTIO_BLK_S_OK);
    expect(disk.data.subarray(10 * 512, 11 * 512)).toEqual(data);
  });

  it('moves a request bigger than one chunk (512 KiB in, 320 KiB out) across descriptors of odd sizes, in pieces', async () => {
    const { disk, drv, ram, w } = setup();
    const sizes = [100_000, 4_321, 524_288 - 104_321];
    const bufs = sizes.map((len) => ({ addr: drv.alloc(len), len, write: true }));
    const status = drv.alloc(1, new Uint8Array([0xff]));
    drv.add([{ addr: drv.alloc(16, encodeVirtioBlkReqHeader({ type: VIRTIO_BLK_T_IN, sector: 100n })), len: 16 }, ...bufs, { addr: status, len: 1, write: true }]);
    w(VIRTIO_MMIO.QUEUE_NOTIFY, 0);
    await until('the read used', () => drv.usedIdx === 1);
    expect(ram.peek(status, 1)[0]).toBe(VIRTIO_BLK_S_OK);
    expect(drv.used(0).len).toBe(524_288 + 1);
    expect(Buffer.concat(bufs.map((b) => ram.peek(b.addr, b.len))).equals(disk.data.subarray(100 * 512, 100 * 512 + 524_288))).toBe(true);
    // 320 KiB out, the header split 10 + 6 with the first data bytes riding in the header's second buffer.
    const data = Buffer.alloc(327_680);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13 + 5) & 0xff;
    const hdr = encodeVirtioBlkReqHeader({ type: VIRTIO_BLK_T_OUT, sector: 1000n });
    const st2 = drv.alloc(1, new Uint8Array([0xff]));
    drv.add([
      { addr: drv.alloc(10, hdr.subarray(0, 10)), len: 10 },
      { addr: drv.alloc(6 + 7, Buffer.concat([hdr.subarray(10), data.subarray(0, 7)])), len: 13 },
      { addr: drv.alloc(data.length - 7, data.subarray(7)), len: data.length - 7 },
      { addr: st2, len: 1, write: true },
    ]);
    w(VIRTIO_MMIO.QUEUE_NOTIFY, 0);
    await until('the write used', () => drv.usedIdx === 2);
    expect(ram.peek(st2, 1)[0]).toBe(VIRTIO_BLK_S_OK);
    expect(data.equals(disk.data.subarray(1000 * 512, 1000 * 512 + data.length))).toBe(true);
  });

  it('answers VIRTIO_BLK_S_IOERR for a write to a read-only disk and leaves the disk as it was', async () => {
    const { disk, request } = setup({ sectors: SECTORS, sectorSize: 512, readOnly: true, cdrom: false, flush: false, discard: false });
    const before = Buffer.from(disk.data);
    const r = await request(VIRTIO_BLK_T_OUT, 0n, { out: new Uint8Array(512).fill(1) });
    expect(r.status).toBe(VIRTIO_BLK_S_IOERR);
    expect(before.equals(disk.data)).toBe(true);
  });

  it('answers VIRTIO_BLK_S_IOERR past the end, for a length that is not whole sectors, and when the disk fails', async () => {
    const { disk, request } = setup();
    expect((await request(VIRTIO_BLK_T_IN, BigInt(SECTORS - 1), { inLen: 1024 })).status).toBe(VIRTIO_BLK_S_IOERR);
    expect((await request(VIRTIO_BLK_T_IN, 2n ** 63n, { inLen: 512 })).status).toBe(VIRTIO_BLK_S_IOERR);
    expect((await request(VIRTIO_BLK_T_OUT, 0n, { out: new Uint8Array(100) })).status).toBe(VIRTIO_BLK_S_IOERR);
    disk.failReads = true;
    expect((await request(VIRTIO_BLK_T_IN, 0n, { inLen: 512 })).status).toBe(VIRTIO_BLK_S_IOERR);
  });

  it('flushes, discards, answers GET_ID with its serial, and VIRTIO_BLK_S_UNSUPP for an unknown type', async () => {
    const { disk, request } = setup();
    expect((await request(VIRTIO_BLK_T_FLUSH, 0n)).status).toBe(VIRTIO_BLK_S_OK);
    expect(disk.flushes).toBe(1);
    const seg = new Uint8Array(16);
    new DataView(seg.buffer).setBigUint64(0, 8n, true);
    new DataView(seg.buffer).setUint32(8, 16, true);
    expect((await request(VIRTIO_BLK_T_DISCARD, 0n, { out: seg })).status).toBe(VIRTIO_BLK_S_OK);
    expect(disk.discards).toEqual([[8, 16]]);
    const id = await request(VIRTIO_BLK_T_GET_ID, 0n, { inLen: 20 });
    expect(Buffer.from(id.data!).toString('latin1').replace(/\0+$/, '')).toBe('xenbox-hda');
    expect((await request(99, 0n, { inLen: 512 })).status).toBe(VIRTIO_BLK_S_UNSUPP);
  });

  it('serves requests in flight together, each used when its own I/O is done', async () => {
    const { disk, drv, ram, w } = setup();
    disk.readDelay = (sector) => (5 - sector) * 20; // the last submitted finishes first
    const statuses: bigint[] = [];
    const heads: number[] = [];
    for (let i = 0; i < 5; i++) { // 15 of the 16 descriptors
      const s = drv.alloc(1, new Uint8Array([0xff]));
      statuses.push(s);
      heads.push(drv.add([{ addr: drv.alloc(16, encodeVirtioBlkReqHeader({ type: VIRTIO_BLK_T_IN, sector: BigInt(i) })), len: 16 }, { addr: drv.alloc(512), len: 512, write: true }, { addr: s, len: 1, write: true }]));
    }
    w(VIRTIO_MMIO.QUEUE_NOTIFY, 0);
    await until('five used', () => drv.usedIdx === 5);
    expect(statuses.map((s) => ram.peek(s, 1)[0])).toEqual(Array(5).fill(VIRTIO_BLK_S_OK));
    expect([0, 1, 2, 3, 4].map((i) => drv.used(i).id)).toEqual([...heads].reverse());
  });

  it('a chain without room for the header (or the status) sets DEVICE_NEEDS_RESET, raises a config interrupt, and works again after a reset', async () => {
    const { mmio, drv, w, start, request } = setup();
    drv.add([{ addr: drv.alloc(8), len: 8 }, { addr: drv.alloc(1), len: 1, write: true }]);
    w(VIRTIO_MMIO.QUEUE_NOTIFY, 0);
    await until('needs reset', () => (mmio.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) !== 0);
    expect(mmio.read(VIRTIO_MMIO.INTERRUPT_STATUS, 4) & 2).toBe(2);
    expect(drv.usedIdx).toBe(0); // nothing was used for the bad chain
    // The driver resets the device and sets the queue up again (a fresh ring).
    w(VIRTIO_MMIO.STATUS, 0);
    drv.restart();
    start();
    expect(mmio.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET).toBe(0);
    expect((await request(VIRTIO_BLK_T_IN, 0n, { inLen: 512 })).status).toBe(VIRTIO_BLK_S_OK);
  });

  it('a reset and a new queue while the old one is being drained: the new notify is served, the old chain is not pushed', async () => {
    const { drv, w, start, ram } = setup();
    const hdr = () => drv.alloc(16, encodeVirtioBlkReqHeader({ type: VIRTIO_BLK_T_IN, sector: 0n }));
    drv.add([{ addr: hdr(), len: 16 }, { addr: drv.alloc(512), len: 512, write: true }, { addr: drv.alloc(1), len: 1, write: true }]);
    w(VIRTIO_MMIO.QUEUE_NOTIFY, 0); // the drain is now waiting for guest memory
    w(VIRTIO_MMIO.STATUS, 0);
    drv.restart();
    start();
    const status = drv.alloc(1, new Uint8Array([0xff]));
    drv.add([{ addr: hdr(), len: 16 }, { addr: drv.alloc(512), len: 512, write: true }, { addr: status, len: 1, write: true }]);
    w(VIRTIO_MMIO.QUEUE_NOTIFY, 0);
    await until('the new queue\'s request used', () => drv.usedIdx === 1);
    expect(ram.peek(status, 1)[0]).toBe(VIRTIO_BLK_S_OK);
    await new Promise((r) => setTimeout(r, 20));
    expect(drv.usedIdx).toBe(1); // nothing from before the reset landed in the new ring
  });

  it('a looping chain sets DEVICE_NEEDS_RESET instead of hanging or crashing the device model', async () => {
    const { mmio, drv, w } = setup();
    const a = drv.alloc(16, encodeVirtioBlkReqHeader({ type: VIRTIO_BLK_T_IN, sector: 0n }));
    drv.desc(0, { addr: a, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 });
    drv.desc(1, { addr: a, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 0 });
    drv.publish(0);
    w(VIRTIO_MMIO.QUEUE_NOTIFY, 0);
    await until('needs reset', () => (mmio.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) !== 0);
    expect(drv.usedIdx).toBe(0);
  });
});
