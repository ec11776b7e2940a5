/**
 * The device side of one split virtqueue (Virtio 1.2 §2.7; QEMU's
 * hw/virtio/virtio.c virtqueue_pop / virtqueue_push, crosvm's queue.rs),
 * over guest memory reached through the DMA path (../guest-memory.ts).
 * Generic: virtio-blk and virtio-net use it the same way.
 *
 *   popAvail()  the next available descriptor chain, as the guest-physical
 *               buffers the device may read and those it may write; null
 *               when the driver has published nothing more.
 *   pushUsed()  hand a chain back with the bytes written into it; the used
 *               element goes in before the used index moves.
 *   takeInterrupt()  whether the driver wants an interrupt for what was
 *               pushed since the last call (VIRTQ_AVAIL_F_NO_INTERRUPT, or
 *               used_event with VIRTIO_F_EVENT_IDX).
 *
 * Cost: one read of the driver area and the descriptor table (one batch,
 * one round trip) serves every chain published up to that avail index;
 * descriptors of a published chain do not change until it is used (§2.7.13).
 *
 * Hostile chains — a head or next index past the table, a loop, an indirect
 * table that is nested, empty or mis-sized, INDIRECT without negotiation, a
 * readable buffer after a writable one (QEMU's "Incorrect order for
 * descriptors"), a chain longer than the caps, the avail index jumping by
 * more than the queue size — make popAvail throw a XenError (EINVAL/E2BIG)
 * and the queue `broken`: it pops nothing more.  The device then sets
 * DEVICE_NEEDS_RESET (QEMU's virtio_error), it does not crash.
 */
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_MAX_SIZE,
  XenError,
  decodeVirtqDesc,
  virtqAvail,
  virtqUsed,
  vringNeedEvent,
} from '@xenbox/abi';
import type { GuestMemory } from '../guest-memory.js';
import type { VirtqueueState } from './virtio-mmio.js';

/** A guest-physical buffer of a chain. */
export interface DescBuffer {
  addr: bigint;
  len: number;
}

/** One available chain: its head (to give back in pushUsed) and its buffers in order. */
export interface DescChain {
  head: number;
  readable: DescBuffer[];
  writable: DescBuffer[];
}

export interface VirtqueueOptions {
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  indirect?: boolean;
  /** VIRTIO_F_EVENT_IDX was negotiated. */
  eventIdx?: boolean;
  /** Most descriptors in one chain (QEMU's VIRTQUEUE_MAX_SIZE, 1024). */
  maxDescriptors?: number;
  /** Most bytes one chain may describe. */
  maxBytes?: number;
}

const DEFAULT_MAX_DESCRIPTORS = 1024;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

export class Virtqueue {
  /** Why the queue stopped (a hostile or broken chain), or null. */
  broken: string | null = null;
  private readonly num: number;
  private readonly opts: Required<VirtqueueOptions>;
  /** Next avail ring index to consume (last_avail_idx). */
  private lastAvail = 0;
  /** The driver's avail idx when the area was last read, and the ring and table as they were. */
  private availIdx = 0;
  private availArea: Uint8Array = new Uint8Array(0);
  private table: Uint8Array = new Uint8Array(0);
  private usedIdx = 0;
  /** used idx when the driver was last interrupted (for vring_need_event). */
  private signalledUsed = 0;
  private interruptPending = false;
  private pops: Promise<unknown> = Promise.resolve();
  private pushes: Promise<unknown> = Promise.resolve();

  constructor(private readonly mem: GuestMemory, readonly state: VirtqueueState, opts: VirtqueueOptions = {}) {
    this.num = state.num;
    this.opts = {
      indirect: opts.indirect ?? false,
      eventIdx: opts.eventIdx ?? false,
      maxDescriptors: opts.maxDescriptors ?? DEFAULT_MAX_DESCRIPTORS,
      maxBytes: opts.maxBytes ?? DEFAULT_MAX_BYTES,
    };
    if (!Number.isInteger(this.num) || this.num < 1 || this.num > VIRTQ_MAX_SIZE) this.broken = `queue size ${this.num} is not 1..${VIRTQ_MAX_SIZE}`;
  }

  /** The next available chain, or null if there is none (or the queue is broken). Calls are served one at a time. */
  popAvail(): Promise<DescChain | null> {
    const p = this.pops.then(() => this.popOne());
    this.pops = p.catch(() => undefined);
    return p;
  }

  /** Give a chain back: used element {head, written}, then the used index. */
  pushUsed(head: number, written: number): Promise<void> {
    const p = this.pushes.then(() => this.pushOne(head, written));
    this.pushes = p.catch(() => undefined);
    return p;
  }

  /** Whether the driver asked to be interrupted for the chains pushed since the last call; clears it. */
  takeInterrupt(): boolean {
    const v = this.interruptPending;
    this.interruptPending = false;
    return v;
  }

  /** Chains popped and not yet pushed back. */
  get inFlight(): number {
    return (this.lastAvail - this.usedIdx) & 0xffff;
  }

  private async popOne(): Promise<DescChain | null> {
    if (this.broken) return null;
    try {
      if (this.lastAvail === this.availIdx) await this.refresh();
      if (this.lastAvail === this.availIdx) return null;
      const head = this.ringEntry(this.lastAvail % this.num);
      this.lastAvail = (this.lastAvail + 1) & 0xffff;
      return await this.walk(head);
    } catch (e) {
      throw this.fail(e);
    }
  }

  /** Read the driver area and the descriptor table in one batch. */
  private async refresh(): Promise<void> {
    const [avail, table] = await Promise.all([
      this.mem.read(this.state.driver, virtqAvail.size(this.num)),
      this.mem.read(this.state.desc, this.num * VIRTQ_DESC_SIZE),
    ]);
    this.setSnapshot(avail, table);
    if (this.lastAvail !== this.availIdx || !this.opts.eventIdx) return;
    // Tell the driver where we are (avail_event), then look once more: it may have published meanwhile (§2.7.10).
    await this.mem.write(this.state.device + BigInt(virtqUsed.availEvent(this.num)), u16(this.lastAvail));
    const [again, table2] = await Promise.all([
      this.mem.read(this.state.driver, virtqAvail.size(this.num)),
      this.mem.read(this.state.desc, this.num * VIRTQ_DESC_SIZE),
    ]);
    this.setSnapshot(again, table2);
  }

  private setSnapshot(avail: Uint8Array, table: Uint8Array): void {
    const idx = readU16(avail, virtqAvail.IDX);
    const ahead = (idx - this.lastAvail) & 0xffff;
    if (ahead > this.num) throw new XenError('EINVAL', `avail idx moved from ${this.lastAvail} to ${idx}, more than the queue size ${this.num}`);
    this.availIdx = idx;
    this.availArea = avail;
    this.table = table;
  }

  private ringEntry(slot: number): number {
    return readU16(this.availArea, virtqAvail.ring(slot));
  }

  /** Follow a chain from its head (virtqueue_split_pop). */
  private async walk(head: number): Promise<DescChain> {
    const chain: DescChain = { head, readable: [], writable: [] };
    let table = this.table;
    let size = this.num;
    let idx = head;
    let count = 0;
    let bytes = 0;
    let indirect = false;
    for (;;) {
      if (idx >= size) throw new XenError('EINVAL', `descriptor ${idx} of chain ${head} is past the ${indirect ? 'indirect table' : 'table'} (${size} entries)`);
      if (++count > Math.min(size, this.opts.maxDescriptors)) throw new XenError('EINVAL', `chain ${head} loops or is longer than ${Math.min(size, this.opts.maxDescriptors)} descriptors`);
      const d = decodeVirtqDesc(table, idx * VIRTQ_DESC_SIZE);
      if (d.flags & VIRTQ_DESC_F_INDIRECT) {
        table = await this.indirectTable(head, d, indirect || count > 1);
        size = table.length / VIRTQ_DESC_SIZE;
        idx = 0;
        count = 0;
        indirect = true;
        continue;
      }
      bytes += d.len;
      if (bytes > this.opts.maxBytes) throw new XenError('E2BIG', `chain ${head} describes more than ${this.opts.maxBytes} bytes`);
      if (d.flags & VIRTQ_DESC_F_WRITE) chain.writable.push({ addr: d.addr, len: d.len });
      else if (chain.writable.length) throw new XenError('EINVAL', `chain ${head}: a device-readable buffer after a device-writable one`);
      else chain.readable.push({ addr: d.addr, len: d.len });
      if (!(d.flags & VIRTQ_DESC_F_NEXT)) return chain;
      idx = d.next;
    }
  }

  /** The table an INDIRECT head descriptor points at (§2.7.5.3). */
  private async indirectTable(head: number, d: { addr: bigint; len: number; flags: number }, misplaced: boolean): Promise<Uint8Array> {
    if (!this.opts.indirect) throw new XenError('EINVAL', `chain ${head}: INDIRECT descriptor but VIRTIO_F_INDIRECT_DESC was not negotiated`);
    if (misplaced) throw new XenError('EINVAL', `chain ${head}: an INDIRECT descriptor inside a chain or an indirect table`);
    if (d.flags & VIRTQ_DESC_F_NEXT) throw new XenError('EINVAL', `chain ${head}: INDIRECT and NEXT together`);
    if (d.len === 0 || d.len % VIRTQ_DESC_SIZE !== 0) throw new XenError('EINVAL', `chain ${head}: indirect table of ${d.len} bytes is not a whole number of descriptors`);
    if (d.len / VIRTQ_DESC_SIZE > this.opts.maxDescriptors) throw new XenError('E2BIG', `chain ${head}: indirect table of ${d.len / VIRTQ_DESC_SIZE} descriptors (at most ${this.opts.maxDescriptors})`);
    return this.mem.read(d.addr, d.len);
  }

  private async pushOne(head: number, written: number): Promise<void> {
    if (this.broken) return;
    const slot = this.usedIdx % this.num;
    const elem = new Uint8Array(8);
    const dv = new DataView(elem.buffer);
    dv.setUint32(0, head, true);
    dv.setUint32(4, written >>> 0, true);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    // Issued in one turn and performed in order: the element, the index, then the driver's wish read after both.
    const w1 = this.mem.write(this.state.device + BigInt(virtqUsed.ring(slot)), elem);
    const w2 = this.mem.write(this.state.device + BigInt(virtqUsed.IDX), u16(this.usedIdx));
    const wish = this.opts.eventIdx
      ? this.mem.read(this.state.driver + BigInt(virtqAvail.usedEvent(this.num)), 2)
      : this.mem.read(this.state.driver + BigInt(virtqAvail.FLAGS), 2);
    try {
      const [, , w] = await Promise.all([w1, w2, wish]);
      const v = readU16(w, 0);
      const need = this.opts.eventIdx ? vringNeedEvent(v, this.usedIdx, this.signalledUsed) : (v & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
      if (need) {
        this.interruptPending = true;
        this.signalledUsed = this.usedIdx;
      }
    } catch (e) {
      throw this.fail(e);
    }
  }

  /** The queue stops at its first error (a device reset makes a new one). */
  private fail(e: unknown): XenError {
    const err = e instanceof XenError ? e : new XenError('EIO', e instanceof Error ? e.message : String(e));
    this.broken ??= err.detail;
    return err;
  }
}

function readU16(b: Uint8Array, off: number): number {
  if (off + 2 > b.length) throw new XenError('EINVAL', `virtqueue: read of 2 bytes at ${off} past a ${b.length}-byte area`);
  return b[off]! | (b[off + 1]! << 8);
}

function u16(v: number): Uint8Array {
  return new Uint8Array([v & 0xff, (v >> 8) & 0xff]);
}
