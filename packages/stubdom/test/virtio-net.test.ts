/**
 * virtio-net behind a virtio-mmio slot, driven the way a driver drives it
 * (queues set up through the registers, chains written into guest memory,
 * QueueNotify), against a guest memory in a buffer and a fake network link
 * in place of Netfront.  Hostile chains must be dropped and counted, never
 * crash the device model or leak the driver's buffers.
 */
import { describe, expect, it } from 'vitest';
import {
  VIRTIO_F_VERSION_1,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_STATUS_DEVICE_NEEDS_RESET,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
} from '@xenbox/abi';
import { VIRTIO_MMIO, VirtioMmio, VirtioNet, type NetLink } from '@xenbox/stubdom';

const RAM = 0x8000_0000n;
const MAC = new Uint8Array([0x00, 0x16, 0x3e, 0x12, 0x34, 0x56]);

/** Guest RAM in a buffer, counting the bytes the device reads. */
class FakeMemory {
  readonly bytes = new Uint8Array(1 << 20);
  bytesRead = 0;
  async read(addr: bigint, len: number): Promise<Uint8Array> {
    this.bytesRead += len;
    const at = this.offset(addr, len);
    return this.bytes.slice(at, at + len);
  }
  async write(addr: bigint, data: Uint8Array): Promise<void> {
    this.bytes.set(data, this.offset(addr, data.length));
  }
  private offset(addr: bigint, len: number): number {
    const at = Number(addr - RAM);
    if (at < 0 || at + len > this.bytes.length) throw new Error(`fake memory: 0x${addr.toString(16)}+${len} outside RAM`);
    return at;
  }
}

/** Netfront's part: frames sent are kept, frames can be injected. */
class FakeLink implements NetLink {
  connected = true;
  readonly sent: Uint8Array[] = [];
  private handler: ((f: Uint8Array) => void) | null = null;
  async send(frame: Uint8Array): Promise<void> {
    this.sent.push(frame.slice());
  }
  onFrame(cb: (f: Uint8Array) => void): () => void {
    this.handler = cb;
    return () => (this.handler = null);
  }
  inject(frame: Uint8Array): void {
    this.handler?.(frame);
  }
}

/** The driver side of one split queue in FakeMemory (what U-Boot's virtio_ring.c does). */
class DriverQueue {
  readonly desc: bigint;
  readonly avail: bigint;
  readonly used: bigint;
  private nextDesc = 0;
  private availIdx = 0;
  private usedSeen = 0;

  constructor(private readonly mem: FakeMemory, readonly index: number, readonly num: number, base: bigint) {
    this.desc = base;
    this.avail = base + BigInt(16 * num);
    this.used = base + 0x1000n;
  }

  setUp(mmio: VirtioMmio): void {
    mmio.write(VIRTIO_MMIO.QUEUE_SEL, 4, this.index);
    mmio.write(VIRTIO_MMIO.QUEUE_NUM, 4, this.num);
    mmio.write(VIRTIO_MMIO.QUEUE_DESC_LOW, 4, Number(this.desc & 0xffff_ffffn));
    mmio.write(VIRTIO_MMIO.QUEUE_DRIVER_LOW, 4, Number(this.avail & 0xffff_ffffn));
    mmio.write(VIRTIO_MMIO.QUEUE_DEVICE_LOW, 4, Number(this.used & 0xffff_ffffn));
    mmio.write(VIRTIO_MMIO.QUEUE_READY, 4, 1);
  }

  /** Write a chain's descriptors (the last `next` may be forced, for loops) and publish it. */
  add(bufs: Array<{ addr: bigint; len: number; write?: boolean }>, opts: { loopTo?: number } = {}): number {
    const head = this.nextDesc;
    bufs.forEach((b, i) => {
      const d = (this.nextDesc + i) % this.num;
      const at = Number(this.desc - RAM) + 16 * d;
      const dv = new DataView(this.mem.bytes.buffer, at, 16);
      dv.setBigUint64(0, b.addr, true);
      dv.setUint32(8, b.len, true);
      const last = i === bufs.length - 1;
      const next = last && opts.loopTo !== undefined ? opts.loopTo : (d + 1) % this.num;
      dv.setUint16(12, (b.write ? VIRTQ_DESC_F_WRITE : 0) | (!last || opts.loopTo !== undefined ? VIRTQ_DESC_F_NEXT : 0), true);
      dv.setUint16(14, next, true);
    });
    this.nextDesc = (this.nextDesc + bufs.length) % this.num;
    const av = new DataView(this.mem.bytes.buffer, Number(this.avail - RAM));
    av.setUint16(4 + 2 * (this.availIdx % this.num), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    av.setUint16(2, this.availIdx, true);
    return head;
  }

  /** Used elements since the last look. */
  takeUsed(): Array<{ id: number; len: number }> {
    const uv = new DataView(this.mem.bytes.buffer, Number(this.used - RAM));
    const idx = uv.getUint16(2, true);
    const out: Array<{ id: number; len: number }> = [];
    while (this.usedSeen !== idx) {
      const slot = this.usedSeen % this.num;
      out.push({ id: uv.getUint32(4 + 8 * slot, true), len: uv.getUint32(8 + 8 * slot, true) });
      this.usedSeen = (this.usedSeen + 1) & 0xffff;
    }
    return out;
  }
}

function put(mem: FakeMemory, addr: bigint, data: Uint8Array): void {
  mem.bytes.set(data, Number(addr - RAM));
}
function get(mem: FakeMemory, addr: bigint, len: number): Uint8Array {
  return mem.bytes.slice(Number(addr - RAM), Number(addr - RAM) + len);
}

/** An Ethernet frame of `len` bytes with a recognisable body. */
function frame(len: number, seed = 1): Uint8Array {
  const f = new Uint8Array(len);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
  f.set(MAC, 6);
  f[12] = 0x08;
  f[13] = 0x06;
  for (let i = 14; i < len; i++) f[i] = (i * 13 + seed) & 0xff;
  return f;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** A device in a slot, its two queues set up and DRIVER_OK, as U-Boot leaves it. */
function setUp(o: { link?: FakeLink | null } = {}) {
  const mem = new FakeMemory();
  const irqs: boolean[] = [];
  const host = { setIrq: (_s: number, level: boolean) => irqs.push(level), consoleOutput: () => undefined, shutdown: () => undefined };
  const net = new VirtioNet({ mac: MAC, memory: mem });
  const mmio = new VirtioMmio({ base: 0x1000_8000, irq: 8, host, backend: net });
  net.bindTransport(mmio);
  const link = o.link === undefined ? new FakeLink() : o.link;
  if (link) net.setLink(link);
  mmio.write(VIRTIO_MMIO.INTERRUPT_ACK, 4, 3);
  mmio.write(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 4, 0);
  mmio.write(VIRTIO_MMIO.DRIVER_FEATURES, 4, Number(VIRTIO_NET_F_MAC));
  mmio.write(VIRTIO_MMIO.DRIVER_FEATURES_SEL, 4, 1);
  mmio.write(VIRTIO_MMIO.DRIVER_FEATURES, 4, 1);
  const rx = new DriverQueue(mem, 0, 32, RAM + 0x1_0000n);
  const tx = new DriverQueue(mem, 1, 32, RAM + 0x2_0000n);
  rx.setUp(mmio);
  tx.setUp(mmio);
  mmio.write(VIRTIO_MMIO.STATUS, 4, 0xf);
  const notify = (q: DriverQueue) => mmio.write(VIRTIO_MMIO.QUEUE_NOTIFY, 4, q.index);
  return { mem, mmio, net, link, rx, tx, irqs, notify };
}

/** A U-Boot style transmit: a 12-byte zeroed header buffer, then the frame's buffer. */
function sendFrame(t: ReturnType<typeof setUp>, f: Uint8Array, at = RAM + 0x4_0000n): number {
  put(t.mem, at, new Uint8Array(VIRTIO_NET_HDR_SIZE));
  put(t.mem, at + 0x100n, f);
  const head = t.tx.add([{ addr: at, len: VIRTIO_NET_HDR_SIZE }, { addr: at + 0x100n, len: f.length }]);
  t.notify(t.tx);
  return head;
}

/** Post `n` U-Boot rx buffers of 1526 bytes at 0x80050000 + i * 0x800. */
function postRx(t: ReturnType<typeof setUp>, n: number, from = 0, len = 1526): bigint[] {
  const addrs: bigint[] = [];
  for (let i = from; i < from + n; i++) {
    const a = RAM + 0x5_0000n + BigInt(i * 0x800);
    t.rx.add([{ addr: a, len, write: true }]);
    addrs.push(a);
  }
  return addrs;
}

describe('virtio-net: what the driver reads', () => {
  it('is device 1 offering VERSION_1, MAC and STATUS, with the vif MAC in config byte by byte and the link up once attached', () => {
    const t = setUp({ link: null });
    expect(t.mmio.read(VIRTIO_MMIO.DEVICE_ID, 4)).toBe(1);
    t.mmio.write(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 4, 0);
    const lo = BigInt(t.mmio.read(VIRTIO_MMIO.DEVICE_FEATURES, 4));
    t.mmio.write(VIRTIO_MMIO.DEVICE_FEATURES_SEL, 4, 1);
    const hi = BigInt(t.mmio.read(VIRTIO_MMIO.DEVICE_FEATURES, 4));
    expect((hi << 32n) | lo).toBe(VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS);
    // U-Boot's virtio_cread_bytes: six single-byte reads.
    expect(Array.from({ length: 6 }, (_, i) => t.mmio.read(VIRTIO_MMIO.CONFIG + i, 1))).toEqual([...MAC]);
    expect(t.mmio.read(VIRTIO_MMIO.CONFIG, 4)).toBe(0x123e1600);
    expect(t.mmio.read(VIRTIO_MMIO.CONFIG + 6, 2)).toBe(0);
    t.net.setLink(new FakeLink());
    expect(t.mmio.read(VIRTIO_MMIO.CONFIG + 6, 2)).toBe(1);
    expect(t.mmio.read(VIRTIO_MMIO.INTERRUPT_STATUS, 4)).toBe(2);
    expect(t.mmio.read(VIRTIO_MMIO.CONFIG + 0x40, 4)).toBe(0);
  });
});

describe('virtio-net transmit', () => {
  it('strips the 12-byte header of a two-buffer chain (U-Boot) and sends the frame; the chain comes back used with 0 bytes', async () => {
    const t = setUp();
    const f = frame(60);
    const head = sendFrame(t, f);
    await settle();
    expect(t.link!.sent).toEqual([f]);
    expect(t.tx.takeUsed()).toEqual([{ id: head, len: 0 }]);
    expect(t.net.stats).toMatchObject({ txPackets: 1, txBytes: 60, txErrors: 0 });
    expect(t.irqs.at(-1)).toBe(true);
  });

  it('takes header and frame from one buffer too (Linux), and several chains per notify in order', async () => {
    const t = setUp();
    const frames = [frame(42, 1), frame(1514, 2), frame(100, 3)];
    frames.forEach((f, i) => {
      const at = RAM + 0x4_0000n + BigInt(i * 0x1000);
      put(t.mem, at, new Uint8Array(VIRTIO_NET_HDR_SIZE));
      put(t.mem, at + BigInt(VIRTIO_NET_HDR_SIZE), f);
      t.tx.add([{ addr: at, len: VIRTIO_NET_HDR_SIZE + f.length }]);
    });
    t.notify(t.tx);
    await settle();
    expect(t.link!.sent).toEqual(frames);
    expect(t.tx.takeUsed().map((u) => u.len)).toEqual([0, 0, 0]);
  });

  it('drops and counts a chain shorter than the header, a runt frame and an oversize one (without reading it), and goes on with the next', async () => {
    const t = setUp();
    const at = RAM + 0x4_0000n;
    const short = t.tx.add([{ addr: at, len: 8 }]);
    const runt = t.tx.add([{ addr: at, len: VIRTIO_NET_HDR_SIZE + 10 }]);
    const huge = t.tx.add([{ addr: at, len: VIRTIO_NET_HDR_SIZE }, { addr: at + 0x100n, len: 0x8_0000 }]);
    t.notify(t.tx);
    await settle();
    expect(t.mem.bytesRead).toBeLessThan(4096); // the rings, not the 512 KiB buffer
    const good = sendFrame(t, frame(64));
    await settle();
    expect(t.link!.sent.map((f) => f.length)).toEqual([64]);
    expect(t.tx.takeUsed()).toEqual([{ id: short, len: 0 }, { id: runt, len: 0 }, { id: huge, len: 0 }, { id: good, len: 0 }]);
    expect(t.net.stats).toMatchObject({ txPackets: 1, txErrors: 3 });
    expect(t.net.lastError).toBeNull();
    expect(t.mmio.read(VIRTIO_MMIO.STATUS, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET).toBe(0);
  });

  it('drops frames while the frontend is not connected (netback restarting), still giving the buffers back', async () => {
    const t = setUp();
    t.link!.connected = false;
    const head = sendFrame(t, frame(60));
    await settle();
    expect(t.link!.sent).toEqual([]);
    expect(t.tx.takeUsed()).toEqual([{ id: head, len: 0 }]);
    expect(t.net.stats.txDropped).toBe(1);
    t.link!.connected = true;
    sendFrame(t, frame(60));
    await settle();
    expect(t.link!.sent).toHaveLength(1);
  });

  it('a looping chain breaks the transmit queue and asks for a reset (DEVICE_NEEDS_RESET), nothing thrown', async () => {
    const t = setUp();
    const at = RAM + 0x4_0000n;
    t.tx.add([{ addr: at, len: VIRTIO_NET_HDR_SIZE }, { addr: at, len: 60 }], { loopTo: 0 });
    t.notify(t.tx);
    await settle();
    expect(t.net.lastError).toMatch(/transmitq: .*loops/);
    expect(t.mmio.read(VIRTIO_MMIO.STATUS, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET).toBe(VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    expect(t.mmio.read(VIRTIO_MMIO.INTERRUPT_STATUS, 4) & 2).toBe(2);
    expect(t.link!.sent).toEqual([]);
    // After the driver resets the device and sets the queues up again it works.
    t.mmio.write(VIRTIO_MMIO.STATUS, 4, 0);
    const fresh = new DriverQueue(t.mem, 1, 32, RAM + 0x3_0000n);
    fresh.setUp(t.mmio);
    t.mmio.write(VIRTIO_MMIO.STATUS, 4, 0xf);
    put(t.mem, at, new Uint8Array(VIRTIO_NET_HDR_SIZE + 60));
    fresh.add([{ addr: at, len: VIRTIO_NET_HDR_SIZE + 60 }]);
    t.notify(fresh);
    await settle();
    expect(t.link!.sent).toHaveLength(1);
  });
});

describe('virtio-net with buffers outside guest RAM (DMA refused)', () => {
  it('a tx buffer the device cannot read, or an rx buffer it cannot write, sets DEVICE_NEEDS_RESET; nothing is sent, nothing thrown', async () => {
    const t = setUp();
    t.tx.add([{ addr: 0x1000n, len: VIRTIO_NET_HDR_SIZE + 60 }]);
    t.notify(t.tx);
    await settle();
    expect(t.link!.sent).toEqual([]);
    expect(t.net.lastError).toMatch(/transmitq: .*outside RAM/);
    const r = setUp();
    r.rx.add([{ addr: 0x1000n, len: 1526, write: true }]);
    r.notify(r.rx);
    r.link!.inject(frame(60));
    await settle();
    expect(r.net.lastError).toMatch(/receiveq: .*outside RAM/);
    expect(r.mmio.read(VIRTIO_MMIO.STATUS, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET).toBe(VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    expect(r.net.stats).toMatchObject({ rxPackets: 0, rxErrors: 1 });
  });
});

describe('virtio-net receive', () => {
  it('puts a frame behind a header with num_buffers = 1 into the next posted buffer, used with header + frame length', async () => {
    const t = setUp();
    const bufs = postRx(t, 4);
    t.notify(t.rx);
    const f = frame(98);
    t.link!.inject(f);
    await settle();
    expect(t.rx.takeUsed()).toEqual([{ id: 0, len: VIRTIO_NET_HDR_SIZE + 98 }]);
    const hdr = get(t.mem, bufs[0]!, VIRTIO_NET_HDR_SIZE);
    expect([...hdr]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    expect(get(t.mem, bufs[0]! + BigInt(VIRTIO_NET_HDR_SIZE), 98)).toEqual(f);
    expect(t.net.stats).toMatchObject({ rxPackets: 1, rxBytes: 98 });
    expect(t.irqs.at(-1)).toBe(true);
  });

  it('drops and counts frames when no buffer is posted, and finds buffers the driver adds without a kick (U-Boot free_pkt)', async () => {
    const t = setUp();
    postRx(t, 1);
    t.notify(t.rx);
    t.link!.inject(frame(60, 1));
    t.link!.inject(frame(60, 2));
    await settle();
    expect(t.rx.takeUsed()).toHaveLength(1);
    expect(t.net.stats).toMatchObject({ rxPackets: 1, rxDropped: 1 });
    postRx(t, 1, 1); // no notify
    t.link!.inject(frame(60, 3));
    await settle();
    expect(t.rx.takeUsed()).toEqual([{ id: 1, len: 72 }]);
    expect(get(t.mem, RAM + 0x5_0800n + 12n, 60)).toEqual(frame(60, 3));
  });

  it('drops frames before the driver set up its receive queue', async () => {
    const t = setUp();
    t.link!.inject(frame(60));
    await settle();
    expect(t.net.stats.rxDropped).toBe(1);
  });

  it('a frame longer than 1514 bytes is dropped without taking a buffer; a buffer too small for its frame comes back with 0 bytes', async () => {
    const t = setUp();
    postRx(t, 1, 0, 40); // hostile: smaller than header + frame
    postRx(t, 1, 1);
    t.notify(t.rx);
    t.link!.inject(frame(1600));
    t.link!.inject(frame(60, 1));
    t.link!.inject(frame(60, 2));
    await settle();
    expect(t.rx.takeUsed()).toEqual([{ id: 0, len: 0 }, { id: 1, len: 72 }]);
    expect(get(t.mem, RAM + 0x5_0800n + 12n, 60)).toEqual(frame(60, 2));
    expect(t.net.stats).toMatchObject({ rxPackets: 1, rxErrors: 2 });
  });

  it('scatters a frame over a chain of several writable buffers', async () => {
    const t = setUp();
    const a = RAM + 0x6_0000n;
    t.rx.add([{ addr: a, len: VIRTIO_NET_HDR_SIZE, write: true }, { addr: a + 0x100n, len: 50, write: true }, { addr: a + 0x200n, len: 2000, write: true }]);
    t.notify(t.rx);
    const f = frame(300);
    t.link!.inject(f);
    await settle();
    expect(t.rx.takeUsed()).toEqual([{ id: 0, len: VIRTIO_NET_HDR_SIZE + 300 }]);
    expect(get(t.mem, a + 0x100n, 50)).toEqual(f.subarray(0, 50));
    expect(get(t.mem, a + 0x200n, 250)).toEqual(f.subarray(50));
  });

  it('after a reset forgets the receive queue: frames are dropped until the driver sets it up again', async () => {
    const t = setUp();
    postRx(t, 2);
    t.notify(t.rx);
    t.mmio.write(VIRTIO_MMIO.STATUS, 4, 0);
    t.link!.inject(frame(60));
    await settle();
    expect(t.net.stats).toMatchObject({ rxPackets: 0, rxDropped: 1 });
    expect(t.rx.takeUsed()).toEqual([]);
  });
});
