/**
 * virtio-blk (Virtio 1.2 §5.2; QEMU hw/block/virtio-blk.c), a VirtioBackend
 * behind a virtio-mmio slot, whose disk is a vbd reached through blkfront
 * → blkback: as in Xen's stub domains, where the device model's block
 * layer is a PV front end (mini-os blkfront) of the real backend.
 *
 * One request queue.  Each chain is a 16-byte header (type, sector), then
 * data, then a one-byte status the device writes last; the framing across
 * descriptors is the driver's choice (VERSION_1 implies ANY_LAYOUT), so the
 * readable buffers are one byte stream and the writable ones another.
 * Requests run concurrently through blkfront; each is pushed used when its
 * disk I/O and its writes into the guest are done.
 *
 * Statuses follow QEMU: an I/O error, a request past the end, a write to a
 * read-only disk, a length that is not whole sectors → VIRTIO_BLK_S_IOERR;
 * an unknown type → VIRTIO_BLK_S_UNSUPP.  A chain with no room for the
 * header or the status ("virtio-blk missing headers") is the driver's bug:
 * the device sets DEVICE_NEEDS_RESET (QEMU's virtio_error) and serves
 * nothing until the driver resets it.
 */
import {
  VIRTIO_BLK_CONFIG,
  VIRTIO_BLK_DISCARD_SEG_SIZE,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_REQ_HDR_SIZE,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VIRTIO_ID_BLOCK,
  VIRTIO_INT_CONFIG_CHANGE,
  VIRTIO_INT_USED_BUFFER,
  VIRTIO_STATUS_DEVICE_NEEDS_RESET,
  XenError,
  decodeVirtioBlkDiscardSeg,
  decodeVirtioBlkReqHeader,
} from '@xenbox/abi';
import type { Logger } from '@xenbox/libxen';
import type { GuestMemory } from '../guest-memory.js';
import type { VirtioBackend, VirtqueueState } from './virtio-mmio.js';
import { Virtqueue, type DescBuffer, type DescChain } from './virtqueue.js';

/** The disk behind the device: what libxen's Blkfront offers (sectors are 512 bytes on the ring). */
export interface BlockDisk {
  readonly info: { sectors: number; sectorSize: number; readOnly: boolean; cdrom: boolean; flush: boolean; discard: boolean };
  read(sector: number, count: number): Promise<Uint8Array>;
  write(sector: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  discard(sector: number, count: number): Promise<void>;
}

/** What the device needs of its transport (a VirtioMmio has these). */
export interface VirtioTransportLink {
  status: number;
  readonly driverFeatures: bigint;
  interrupt(bits: 1 | 2): void;
}

export interface VirtioBlkOptions {
  disk: BlockDisk;
  mem: GuestMemory;
  /** GET_ID's answer (at most 20 bytes; QEMU's drive serial). */
  serial: string;
  log?: Logger;
  queueMax?: number;
}

/** Queue size offered (QueueNumMax); U-Boot and Linux take what is offered. */
const DEFAULT_QUEUE_MAX = 128;
/** Most data bytes per descriptor / descriptors per request we announce (size_max, seg_max: QEMU's 128 segments). */
const SIZE_MAX = 1024 * 1024;
const SEG_MAX = 126;
/** Requests with at most this many readable bytes are read whole at once; bigger ones chunk by chunk. */
const SMALL_REQUEST = 64 * 1024;
/** Disk I/O and DMA of a big request go in pieces of this size, overlapping each other. */
const CHUNK = 128 * 1024;
/** Most bytes of data one request may carry (the chain cap). */
const MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** Discard: one segment per request, up to 1 GiB (QEMU's max_discard_sectors default is larger; blkback splits nothing). */
const MAX_DISCARD_SECTORS = 2 * 1024 * 1024;

export class VirtioBlk implements VirtioBackend {
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly queues = 1;
  readonly queueMax: number;
  readonly features: bigint;
  readonly stats = { requests: 0, reads: 0, writes: 0, flushes: 0, errors: 0, bytesRead: 0, bytesWritten: 0 };
  private readonly config: Uint8Array;
  private transport: VirtioTransportLink | null = null;
  private queue: Virtqueue | null = null;
  /** Bumped by reset: requests of an older generation push nothing. */
  private generation = 0;
  private draining = false;
  private again = false;

  constructor(private readonly o: VirtioBlkOptions) {
    this.queueMax = o.queueMax ?? DEFAULT_QUEUE_MAX;
    const info = o.disk.info;
    let f = VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC | VIRTIO_BLK_F_SIZE_MAX | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH;
    if (this.readOnly) f |= VIRTIO_BLK_F_RO;
    if (info.discard && !this.readOnly) f |= VIRTIO_BLK_F_DISCARD;
    this.features = f;
    this.config = this.makeConfig();
  }

  /** Read-only media: a read-only vbd or a cdrom (`hdc:cdrom,r`). */
  get readOnly(): boolean {
    return this.o.disk.info.readOnly || this.o.disk.info.cdrom;
  }

  /** 512-byte sectors of the disk (virtio_blk_config.capacity). */
  get capacity(): number {
    const i = this.o.disk.info;
    return Math.floor((i.sectors * i.sectorSize) / VIRTIO_BLK_SECTOR_SIZE);
  }

  /** The transport the device sits behind (for its interrupt and status). */
  bindTransport(t: VirtioTransportLink): void {
    this.transport = t;
  }

  readConfig(offset: number, size: number): number {
    if (offset < 0 || offset + size > this.config.length || ![1, 2, 4].includes(size)) return 0;
    const dv = new DataView(this.config.buffer, this.config.byteOffset);
    return size === 1 ? dv.getUint8(offset) : size === 2 ? dv.getUint16(offset, true) : dv.getUint32(offset, true);
  }

  /** The config space is read-only here (no CONFIG_WCE): writes are ignored, as QEMU does without it. */
  writeConfig(): void {}

  notify(q: number, state: VirtqueueState): void {
    if (q !== 0 || !this.transport) return;
    if (this.transport.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) return;
    if (!this.queue || this.queue.state !== state) {
      const feat = this.transport.driverFeatures;
      this.queue = new Virtqueue(this.o.mem, state, { indirect: (feat & VIRTIO_F_INDIRECT_DESC) !== 0n, maxDescriptors: SEG_MAX + 2, maxBytes: MAX_REQUEST_BYTES + VIRTIO_BLK_REQ_HDR_SIZE + 1 });
    }
    void this.drain();
  }

  reset(): void {
    this.generation++;
    this.queue = null;
  }

  /** Pop every available chain and start it; a notify meanwhile (even after a reset and a new queue) makes it look again. */
  private async drain(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.again = false;
        await this.drainQueue();
      } while (this.again);
    } finally {
      this.draining = false;
    }
  }

  /** The current queue until it is empty, broken or replaced by a reset. */
  private async drainQueue(): Promise<void> {
    const q = this.queue;
    const gen = this.generation;
    while (q && gen === this.generation) {
      let chain: DescChain | null;
      try {
        chain = await q.popAvail();
      } catch (e) {
        if (gen === this.generation) this.needsReset(`bad descriptor chain: ${(e as Error).message}`);
        return;
      }
      if (!chain) return;
      void this.serve(q, gen, chain).catch((e: unknown) => {
        if (gen === this.generation) this.needsReset(`request ${chain.head}: ${(e as Error).message}`);
      });
    }
  }

  private async serve(q: Virtqueue, gen: number, chain: DescChain): Promise<void> {
    this.stats.requests++;
    const out = totalLen(chain.readable);
    const inLen = totalLen(chain.writable);
    if (out < VIRTIO_BLK_REQ_HDR_SIZE || inLen < 1) {
      this.needsReset(`request ${chain.head}: missing headers (${out} readable bytes, ${inLen} writable; needs ${VIRTIO_BLK_REQ_HDR_SIZE} and 1)`);
      return;
    }
    const req: Request = { chain, payloadLen: out - VIRTIO_BLK_REQ_HDR_SIZE, dataIn: inLen - 1, payload: null, dma: [] };
    let r: { status: number; written: number };
    try {
      // A small request is read whole in one batch; a big one's payload is read chunk by chunk as the disk takes it.
      const first = await streamRead(this.o.mem, chain.readable, 0, out <= SMALL_REQUEST ? out : VIRTIO_BLK_REQ_HDR_SIZE);
      const hdr = decodeVirtioBlkReqHeader(first.subarray(0, VIRTIO_BLK_REQ_HDR_SIZE));
      if (out <= SMALL_REQUEST) req.payload = first.subarray(VIRTIO_BLK_REQ_HDR_SIZE);
      r = await this.execute(hdr.type, hdr.sector, req);
    } catch (e) {
      this.o.log?.warn({ head: chain.head, err: (e as Error).message }, 'virtio-blk request failed');
      r = { status: VIRTIO_BLK_S_IOERR, written: 0 };
    }
    if (r.status !== VIRTIO_BLK_S_OK) this.stats.errors++;
    if (gen !== this.generation) return;
    // The data's writes are issued (execute saw to it); status, used element and index follow them on the same
    // connection, so they land after the data without waiting a round trip for it (guest-memory.ts).
    try {
      await Promise.all([
        ...req.dma,
        scatter(this.o.mem, chain.writable, new Uint8Array([r.status]), req.dataIn),
        q.pushUsed(chain.head, r.written + 1),
      ]);
    } catch (e) {
      this.needsReset(`completing request ${chain.head}: ${(e as Error).message}`);
      return;
    }
    if (gen === this.generation && q.takeInterrupt()) this.transport?.interrupt(VIRTIO_INT_USED_BUFFER);
  }

  /**
   * One request's disk work: its status and the bytes it writes into guest
   * memory, those writes issued (in req.dma) by the time it returns.
   */
  private async execute(type: number, sector: bigint, req: Request): Promise<{ status: number; written: number }> {
    const disk = this.o.disk;
    const ok = (written = 0) => ({ status: VIRTIO_BLK_S_OK, written });
    const fail = (status: number) => ({ status, written: 0 });
    switch (type) {
      case VIRTIO_BLK_T_IN: {
        const n = this.sectorsOf(sector, req.dataIn);
        if (n === null) return fail(VIRTIO_BLK_S_IOERR);
        this.stats.reads++;
        await inChunks(req.dataIn, async (off, len) => {
          const d = await disk.read(Number(sector) + off / VIRTIO_BLK_SECTOR_SIZE, len / VIRTIO_BLK_SECTOR_SIZE);
          req.dma.push(scatter(this.o.mem, req.chain.writable, d, off));
        });
        this.stats.bytesRead += req.dataIn;
        return ok(req.dataIn);
      }
      case VIRTIO_BLK_T_OUT: {
        if (this.readOnly) return fail(VIRTIO_BLK_S_IOERR);
        const n = this.sectorsOf(sector, req.payloadLen);
        if (n === null) return fail(VIRTIO_BLK_S_IOERR);
        this.stats.writes++;
        const payload = req.payload;
        await inChunks(req.payloadLen, async (off, len) => {
          const data = payload ? payload.subarray(off, off + len) : await streamRead(this.o.mem, req.chain.readable, VIRTIO_BLK_REQ_HDR_SIZE + off, len);
          await disk.write(Number(sector) + off / VIRTIO_BLK_SECTOR_SIZE, data);
        });
        this.stats.bytesWritten += req.payloadLen;
        return ok();
      }
      case VIRTIO_BLK_T_FLUSH:
        this.stats.flushes++;
        if (!this.readOnly && disk.info.flush) await disk.flush();
        return ok();
      case VIRTIO_BLK_T_GET_ID: {
        const id = new Uint8Array(Math.min(VIRTIO_BLK_ID_BYTES, req.dataIn));
        id.set(new TextEncoder().encode(this.o.serial).subarray(0, id.length));
        req.dma.push(scatter(this.o.mem, req.chain.writable, id));
        return ok(id.length);
      }
      case VIRTIO_BLK_T_DISCARD:
        if (!(this.features & VIRTIO_BLK_F_DISCARD) || !req.payload) return fail(VIRTIO_BLK_S_UNSUPP);
        return { ...(await this.discard(req.payload)), written: 0 };
      default:
        return fail(VIRTIO_BLK_S_UNSUPP);
    }
  }

  /** Discard segments (§5.2.6.2): one, within the disk, flags 0 (no unmap request). */
  private async discard(payload: Uint8Array): Promise<{ status: number }> {
    if (payload.length !== VIRTIO_BLK_DISCARD_SEG_SIZE) return { status: VIRTIO_BLK_S_UNSUPP };
    const seg = decodeVirtioBlkDiscardSeg(payload);
    if (seg.flags !== 0 || seg.numSectors === 0 || seg.numSectors > MAX_DISCARD_SECTORS) return { status: VIRTIO_BLK_S_UNSUPP };
    if (this.sectorsOf(seg.sector, seg.numSectors * VIRTIO_BLK_SECTOR_SIZE) === null) return { status: VIRTIO_BLK_S_IOERR };
    await this.o.disk.discard(Number(seg.sector), seg.numSectors);
    return { status: VIRTIO_BLK_S_OK };
  }

  /** Sectors a request of `bytes` at `sector` covers, or null if not whole sectors or past the end (QEMU's virtio_blk_sect_range_ok). */
  private sectorsOf(sector: bigint, bytes: number): number | null {
    if (bytes % VIRTIO_BLK_SECTOR_SIZE !== 0 || bytes > MAX_REQUEST_BYTES) return null;
    const n = bytes / VIRTIO_BLK_SECTOR_SIZE;
    if (sector + BigInt(n) > BigInt(this.capacity)) return null;
    return n;
  }

  /** The driver broke the protocol: DEVICE_NEEDS_RESET and a config-change interrupt (§2.1.2). */
  private needsReset(why: string): void {
    this.o.log?.error({ why }, 'virtio-blk: device needs reset');
    this.queue = null;
    if (!this.transport) throw new XenError('EINVAL', `virtio-blk: ${why}`);
    this.transport.status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    this.transport.interrupt(VIRTIO_INT_CONFIG_CHANGE);
  }

  private makeConfig(): Uint8Array {
    const b = new Uint8Array(VIRTIO_BLK_CONFIG.SIZE);
    const dv = new DataView(b.buffer);
    const sectorSize = Math.max(this.o.disk.info.sectorSize, VIRTIO_BLK_SECTOR_SIZE);
    dv.setBigUint64(VIRTIO_BLK_CONFIG.CAPACITY, BigInt(this.capacity), true);
    dv.setUint32(VIRTIO_BLK_CONFIG.SIZE_MAX, SIZE_MAX, true);
    dv.setUint32(VIRTIO_BLK_CONFIG.SEG_MAX, SEG_MAX, true);
    dv.setUint32(VIRTIO_BLK_CONFIG.BLK_SIZE, sectorSize, true);
    dv.setUint16(VIRTIO_BLK_CONFIG.NUM_QUEUES, 1, true);
    if (this.features & VIRTIO_BLK_F_DISCARD) {
      dv.setUint32(VIRTIO_BLK_CONFIG.MAX_DISCARD_SECTORS, MAX_DISCARD_SECTORS, true);
      dv.setUint32(VIRTIO_BLK_CONFIG.MAX_DISCARD_SEG, 1, true);
      dv.setUint32(VIRTIO_BLK_CONFIG.DISCARD_SECTOR_ALIGNMENT, sectorSize / VIRTIO_BLK_SECTOR_SIZE, true);
    }
    return b;
  }
}

/** A request being served: its chain and the lengths of its streams. */
interface Request {
  chain: DescChain;
  /** Readable bytes after the header (an OUT's data, a DISCARD's segments). */
  payloadLen: number;
  /** Writable bytes before the status byte (an IN's data). */
  dataIn: number;
  /** The payload, when the request was small enough to read whole. */
  payload: Uint8Array | null;
  /** Writes of its data into guest memory, issued and not yet awaited. */
  dma: Array<Promise<unknown>>;
}

/** Run `f` over [0, len) in CHUNK-sized pieces, all at once (blkfront's ring bounds how many are in flight). */
async function inChunks(len: number, f: (off: number, n: number) => Promise<unknown>): Promise<void> {
  const jobs: Array<Promise<unknown>> = [];
  for (let off = 0; off < len; off += CHUNK) jobs.push(f(off, Math.min(CHUNK, len - off)));
  await Promise.all(jobs);
}

function totalLen(bufs: DescBuffer[]): number {
  return bufs.reduce((n, b) => n + b.len, 0);
}

/** Bytes [at, at+len) of a chain's readable stream, read in one batch. */
async function streamRead(mem: GuestMemory, bufs: DescBuffer[], at: number, len: number): Promise<Uint8Array> {
  const reads: Array<{ p: Promise<Uint8Array>; to: number }> = [];
  let pos = 0; // stream offset where buffer b starts
  for (const b of bufs) {
    const from = Math.max(at, pos);
    const to = Math.min(at + len, pos + b.len);
    if (from < to) reads.push({ p: mem.read(b.addr + BigInt(from - pos), to - from), to: from - at });
    pos += b.len;
  }
  const parts = await Promise.all(reads.map((r) => r.p));
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(len);
  parts.forEach((p, i) => out.set(p, reads[i]!.to));
  return out;
}

/** Write `data` into a chain's writable buffers from byte `at` of their stream; the writes are issued at once. */
function scatter(mem: GuestMemory, bufs: DescBuffer[], data: Uint8Array, at = 0): Promise<unknown> {
  const writes: Array<Promise<void>> = [];
  let pos = 0; // stream offset where buffer b starts
  let done = 0;
  for (const b of bufs) {
    if (done >= data.length) break;
    const t = at + done;
    if (t >= pos && t < pos + b.len) {
      const n = Math.min(pos + b.len - t, data.length - done);
      writes.push(mem.write(b.addr + BigInt(t - pos), data.subarray(done, done + n)));
      done += n;
    }
    pos += b.len;
  }
  return Promise.all(writes);
}
