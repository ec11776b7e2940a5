/**
 * virtio-net (Virtio 1.2 §5.1) behind a virtio-mmio slot, reaching the
 * network through a netif frontend in the device model's own domain (libxen's
 * Netfront -> netback's bridge), as a Xen stub domain's QEMU reaches it through
 * MiniOS's netfront (DESIGN §10).
 *
 * Offered: VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC (config `mac` = the vif's
 * `mac=`), VIRTIO_NET_F_STATUS (link up once the frontend has connected).
 * Nothing is offloaded and rx buffers are not merged, so each packet is one
 * descriptor chain behind a 12-byte virtio_net_hdr_v1 that says nothing.
 *
 *   transmitq (1): each chain is gathered from its device-readable buffers,
 *     the header is stripped and the frame handed to Netfront.send (which
 *     resolves once it is on the tx ring); then the chain is used, written 0.
 *     A chain that is shorter than the header, larger than header +
 *     VIRTIO_NET_MAX_FRAME (checked on the descriptors' lengths, before
 *     anything is read), or whose frame is shorter than an Ethernet header
 *     is dropped and counted, and its buffers still go back to the driver.
 *     With no connected frontend (netback restarting, or not yet up) frames
 *     are dropped, as a NIC without link does: a driver that polls for its
 *     tx completion (U-Boot) never waits on the network.
 *   receiveq (0): each frame from Netfront goes into the next posted chain:
 *     header (num_buffers = 1) and frame scattered over its device-writable
 *     buffers, used with their length.  Frames are taken in arrival order,
 *     one at a time.  With no chain posted the frame is dropped and counted
 *     (QEMU's virtio_net_can_receive holds frames back instead, but it has a
 *     queue in front; netback already queues, and a guest that stops posting
 *     must not grow our memory).  A frame too big for the chain it got is
 *     dropped and the chain used with 0 bytes (the driver gets it back; Linux
 *     counts a short packet).  Frames longer than 1514 bytes are dropped
 *     before they take a chain: without VIRTIO_NET_F_MTU a driver only posts
 *     1526-byte buffers (§5.1.6.3.1).
 *
 * The receive queue is learnt from the driver's first notify of it (U-Boot
 * kicks it after posting its buffers, Linux too); afterwards buffers the
 * driver adds without a kick (U-Boot's free_pkt) are found because popAvail
 * reads the avail index from guest memory.  A reset (status 0) forgets the
 * queues; work in flight from before it finishes without touching guest
 * memory again.
 */
import {
  ETH_HLEN,
  VIRTIO_F_VERSION_1,
  VIRTIO_ID_NET,
  VIRTIO_INT_CONFIG_CHANGE,
  VIRTIO_INT_USED_BUFFER,
  VIRTIO_NET_CONFIG,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_MAX_FRAME,
  VIRTIO_NET_RX_QUEUE,
  VIRTIO_NET_S_LINK_UP,
  VIRTIO_NET_TX_QUEUE,
  VIRTIO_STATUS_DEVICE_NEEDS_RESET,
  encodeVirtioNetRxHeader,
} from '@xenbox/abi';
import type { Logger } from '@xenbox/libxen';
import type { GuestMemory } from '../guest-memory.js';
import type { VirtioTransportLink } from './virtio-blk.js';
import type { VirtioBackend, VirtqueueState } from './virtio-mmio.js';
import { Virtqueue, type DescChain } from './virtqueue.js';

/** What the device needs of its network link: libxen's Netfront has exactly this. */
export interface NetLink {
  readonly connected: boolean;
  send(frame: Uint8Array): Promise<void>;
  onFrame(cb: (frame: Uint8Array) => void): () => void;
}

export interface VirtioNetStats {
  txPackets: number;
  txBytes: number;
  /** Frames sent while no frontend was connected. */
  txDropped: number;
  /** Malformed chains (short, oversize, runt frames, unreadable) and refused sends. */
  txErrors: number;
  rxPackets: number;
  rxBytes: number;
  /** Frames that found no posted buffer, or arrived too fast to queue. */
  rxDropped: number;
  /** Frames too big for their buffer or for the device, and failed deliveries. */
  rxErrors: number;
}

export interface VirtioNetOptions {
  mac: Uint8Array;
  memory: GuestMemory;
  log?: Logger;
}

/** Frames waiting for their turn at the receive queue; beyond this they are dropped. */
const RX_BACKLOG = 256;

export class VirtioNet implements VirtioBackend {
  readonly deviceId = VIRTIO_ID_NET;
  readonly features = VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS;
  readonly queueMax = 256;
  readonly queues = 2;
  readonly stats: VirtioNetStats = { txPackets: 0, txBytes: 0, txDropped: 0, txErrors: 0, rxPackets: 0, rxBytes: 0, rxDropped: 0, rxErrors: 0 };
  private link: NetLink | null = null;
  private transport: VirtioTransportLink | null = null;
  private unsubscribe: (() => void) | null = null;
  /** Bumped on reset: work started before it must not touch guest memory. */
  private epoch = 0;
  private rxq: Virtqueue | null = null;
  private rxState: VirtqueueState | null = null;
  private txq: Virtqueue | null = null;
  private txState: VirtqueueState | null = null;
  private txRunning = false;
  private txPending = false;
  private readonly rxBacklog: Uint8Array[] = [];
  private rxRunning = false;
  /** Why a queue broke, last time one did. */
  lastError: string | null = null;

  constructor(private readonly o: VirtioNetOptions) {
    if (o.mac.length !== 6) throw new RangeError(`virtio-net: a MAC has 6 octets, not ${o.mac.length}`);
  }

  get mac(): Uint8Array {
    return this.o.mac;
  }

  /** The transport the device sits behind (for its interrupt and status). */
  bindTransport(t: VirtioTransportLink): void {
    this.transport = t;
  }

  /** Plug in the network (once the frontend exists): the link comes up (a config change). */
  setLink(link: NetLink): void {
    this.unsubscribe?.();
    this.link = link;
    this.unsubscribe = link.onFrame((f) => this.receive(f));
    this.transport?.interrupt(VIRTIO_INT_CONFIG_CHANGE);
  }

  // ---- config space ---------------------------------------------------------

  private configBytes(): Uint8Array {
    const c = new Uint8Array(VIRTIO_NET_CONFIG.SIZE);
    c.set(this.o.mac, VIRTIO_NET_CONFIG.MAC);
    const status = this.link ? VIRTIO_NET_S_LINK_UP : 0;
    c[VIRTIO_NET_CONFIG.STATUS] = status & 0xff;
    c[VIRTIO_NET_CONFIG.STATUS + 1] = status >> 8;
    return c;
  }

  /** Little-endian read of 1, 2 or 4 bytes; beyond our fields, 0 (as QEMU's config is zero-filled). */
  readConfig(offset: number, size: number): number {
    const c = this.configBytes();
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (c[offset + i] ?? 0);
    return v >>> 0;
  }

  /** The config is read-only for a modern driver (mac is written only by legacy ones, §5.1.4.2). */
  writeConfig(): void {}

  // ---- queues ---------------------------------------------------------------

  notify(q: number, state: VirtqueueState): void {
    if (q === VIRTIO_NET_TX_QUEUE) {
      if (this.txState !== state) {
        this.txState = state;
        this.txq = new Virtqueue(this.o.memory, state);
      }
      this.kickTx();
    } else if (q === VIRTIO_NET_RX_QUEUE && this.rxState !== state) {
      // New buffers need no action now: the next frame looks for them.
      this.rxState = state;
      this.rxq = new Virtqueue(this.o.memory, state);
    }
  }

  reset(): void {
    this.epoch++;
    this.rxq = this.txq = null;
    this.rxState = this.txState = null;
    this.rxBacklog.length = 0;
  }

  private kickTx(): void {
    this.txPending = true;
    if (!this.txRunning) void this.runTx();
  }

  private async runTx(): Promise<void> {
    this.txRunning = true;
    try {
      while (this.txPending) {
        this.txPending = false;
        const vq = this.txq;
        const epoch = this.epoch;
        for (;;) {
          if (!vq || epoch !== this.epoch) break;
          const chain = await vq.popAvail();
          if (!chain || epoch !== this.epoch) break;
          await this.transmit(chain);
          if (epoch !== this.epoch) break;
          await vq.pushUsed(chain.head, 0);
          this.signal(vq);
        }
      }
    } catch (e) {
      this.stats.txErrors++;
      this.broken('transmitq', e);
    } finally {
      this.txRunning = false;
    }
  }

  /** One tx chain: its frame to the network, or counted as dropped/bad. */
  private async transmit(chain: DescChain): Promise<void> {
    const total = chain.readable.reduce((n, s) => n + s.len, 0);
    if (total < VIRTIO_NET_HDR_SIZE + ETH_HLEN || total > VIRTIO_NET_HDR_SIZE + VIRTIO_NET_MAX_FRAME) {
      this.stats.txErrors++;
      return;
    }
    const link = this.link;
    if (!link?.connected) {
      this.stats.txDropped++;
      return;
    }
    const parts = await Promise.all(chain.readable.map((s) => this.o.memory.read(s.addr, s.len)));
    const frame = concat(parts, total).subarray(VIRTIO_NET_HDR_SIZE);
    try {
      await link.send(frame);
      this.stats.txPackets++;
      this.stats.txBytes += frame.length;
    } catch (e) {
      this.stats.txErrors++;
      this.o.log?.warn({ len: frame.length, err: (e as Error).message }, 'virtio-net: the frontend refused a frame');
    }
  }

  /** A frame from the network: queued for the receive queue, in order. */
  private receive(frame: Uint8Array): void {
    if (frame.length > VIRTIO_NET_MAX_FRAME) {
      this.stats.rxErrors++;
      return;
    }
    if (!this.rxq || this.rxBacklog.length >= RX_BACKLOG) {
      this.stats.rxDropped++;
      return;
    }
    this.rxBacklog.push(frame.slice()); // the frontend's page is reused once we return
    if (!this.rxRunning) void this.runRx();
  }

  private async runRx(): Promise<void> {
    this.rxRunning = true;
    try {
      for (;;) {
        const frame = this.rxBacklog.shift();
        if (!frame) return;
        await this.deliver(frame).catch((e: unknown) => {
          this.stats.rxErrors++;
          this.broken('receiveq', e);
        });
      }
    } finally {
      this.rxRunning = false;
    }
  }

  private async deliver(frame: Uint8Array): Promise<void> {
    const vq = this.rxq;
    const epoch = this.epoch;
    if (!vq) {
      this.stats.rxDropped++;
      return;
    }
    const chain = await vq.popAvail();
    if (epoch !== this.epoch) return;
    if (!chain) {
      this.stats.rxDropped++;
      return;
    }
    const out = new Uint8Array(VIRTIO_NET_HDR_SIZE + frame.length);
    out.set(encodeVirtioNetRxHeader(), 0);
    out.set(frame, VIRTIO_NET_HDR_SIZE);
    const room = chain.writable.reduce((n, s) => n + s.len, 0);
    if (room < out.length) {
      this.stats.rxErrors++;
      await vq.pushUsed(chain.head, 0);
      this.signal(vq);
      return;
    }
    const writes: Array<Promise<void>> = [];
    let at = 0;
    for (const s of chain.writable) {
      if (at >= out.length) break;
      const n = Math.min(s.len, out.length - at);
      writes.push(this.o.memory.write(s.addr, out.subarray(at, at + n)));
      at += n;
    }
    await Promise.all(writes);
    if (epoch !== this.epoch) return;
    await vq.pushUsed(chain.head, out.length);
    this.stats.rxPackets++;
    this.stats.rxBytes += frame.length;
    this.signal(vq);
  }

  /** Interrupt the driver if it asked for one (VIRTQ_AVAIL_F_NO_INTERRUPT clear). */
  private signal(vq: Virtqueue): void {
    if (vq.takeInterrupt()) this.transport?.interrupt(VIRTIO_INT_USED_BUFFER);
  }

  /** A queue the driver broke (a hostile chain): it stops, and the driver is told to reset the device (QEMU's virtio_error). */
  private broken(queue: string, e: unknown): void {
    const why = `${queue}: ${e instanceof Error ? e.message : String(e)}`;
    this.lastError = why;
    this.o.log?.error({ why }, 'virtio-net: device needs reset');
    if (!this.transport) return;
    this.transport.status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    this.transport.interrupt(VIRTIO_INT_CONFIG_CHANGE);
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
