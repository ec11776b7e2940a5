/**
 * A fake guest for virtio device tests: a flat RAM (GuestMemory that
 * refuses anything outside it, as the hypervisor refuses a gfn the guest
 * does not have) and a split-virtqueue driver that lays out the
 * descriptor table, avail and used rings in it — well-formed chains and,
 * through `desc()`/`publish()`, hostile ones.
 */
import {
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  XenError,
  encodeVirtqDesc,
  virtqAvail,
  virtqUsed,
} from '@xenbox/abi';
import type { GuestMemory, VirtqueueState } from '@xenbox/stubdom';

export const RAM_BASE = 0x8000_0000n;

export class FakeRam implements GuestMemory {
  readonly bytes: Uint8Array;
  reads = 0;
  writes = 0;
  constructor(size = 4 << 20) {
    this.bytes = new Uint8Array(size);
  }
  private off(addr: bigint, len: number): number {
    const o = addr - RAM_BASE;
    if (o < 0n || o + BigInt(len) > BigInt(this.bytes.length)) throw new XenError('EINVAL', `no guest memory at 0x${addr.toString(16)}+${len}`);
    return Number(o);
  }
  async read(addr: bigint, len: number): Promise<Uint8Array> {
    this.reads++;
    const o = this.off(addr, len);
    return this.bytes.slice(o, o + len);
  }
  async write(addr: bigint, data: Uint8Array): Promise<void> {
    this.writes++;
    this.bytes.set(data, this.off(addr, data.length));
  }
  peek(addr: bigint, len: number): Uint8Array {
    const o = this.off(addr, len);
    return this.bytes.slice(o, o + len);
  }
  poke(addr: bigint, data: Uint8Array): void {
    this.bytes.set(data, this.off(addr, data.length));
  }
  u16(addr: bigint): number {
    const b = this.peek(addr, 2);
    return b[0]! | (b[1]! << 8);
  }
  setU16(addr: bigint, v: number): void {
    this.poke(addr, new Uint8Array([v & 0xff, (v >> 8) & 0xff]));
  }
}

export interface Buf {
  addr: bigint;
  len: number;
  write?: boolean;
}

/** The driver's side of one split queue in FakeRam. */
export class FakeDriverQueue {
  readonly state: VirtqueueState;
  private nextDesc = 0;
  private availIdx = 0;
  private heap: bigint;
  constructor(readonly ram: FakeRam, readonly num = 16, at = RAM_BASE) {
    this.state = { num, ready: true, desc: at, driver: at + 0x1000n, device: at + 0x2000n };
    this.heap = at + 0x10000n;
  }
  /** Bytes in RAM for a buffer, optionally filled. */
  alloc(len: number, fill?: Uint8Array): bigint {
    const a = this.heap;
    this.heap += BigInt((len + 15) & ~15) + 16n;
    if (fill) this.ram.poke(a, fill);
    return a;
  }
  /** Write raw descriptor `i`. */
  desc(i: number, d: { addr: bigint; len: number; flags: number; next?: number }): void {
    this.ram.poke(this.state.desc + BigInt(i * VIRTQ_DESC_SIZE), encodeVirtqDesc({ next: 0, ...d }));
  }
  /** Put `head` in the avail ring and move idx by one (or to `idx`). */
  publish(head: number, idx?: number): void {
    this.ram.setU16(this.state.driver + BigInt(virtqAvail.ring(this.availIdx % this.num)), head);
    this.availIdx = idx ?? (this.availIdx + 1) & 0xffff;
    this.ram.setU16(this.state.driver + BigInt(virtqAvail.IDX), this.availIdx);
  }
  /** A well-formed chain of the buffers, published; returns its head. */
  add(bufs: Buf[]): number {
    const head = this.nextDesc;
    bufs.forEach((b, k) => {
      const i = (head + k) % this.num;
      this.desc(i, { addr: b.addr, len: b.len, flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | (k < bufs.length - 1 ? VIRTQ_DESC_F_NEXT : 0), next: (i + 1) % this.num });
    });
    this.nextDesc = (head + bufs.length) % this.num;
    this.publish(head);
    return head;
  }
  /** After a device reset: empty rings, indexes back to 0. */
  restart(): void {
    this.ram.poke(this.state.desc, new Uint8Array(0x3000));
    this.nextDesc = 0;
    this.availIdx = 0;
  }
  setAvailFlags(f: number): void {
    this.ram.setU16(this.state.driver + BigInt(virtqAvail.FLAGS), f);
  }
  get usedIdx(): number {
    return this.ram.u16(this.state.device + BigInt(virtqUsed.IDX));
  }
  used(i: number): { id: number; len: number } {
    const b = this.ram.peek(this.state.device + BigInt(virtqUsed.ring(i % this.num)), 8);
    const dv = new DataView(b.buffer);
    return { id: dv.getUint32(0, true), len: dv.getUint32(4, true) };
  }
}

export async function until(what: string, f: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
