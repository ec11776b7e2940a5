/**
 * The data path of one connected vif (Linux xen-netback's xenvif_queue): its
 * tx and rx rings, its event channel, its receive queue, and the loop that
 * serves them.
 *
 * - Guest transmit (tx.c side of netback.c): slots are copied out of the
 *   ring once and assembled and checked (tx-assembler.ts); the packet data of
 *   a whole round is fetched with one batched grant copy; every slot is
 *   answered (OKAY, ERROR, NULL for extra info); packets go to the bridge.
 *   `rate=` is enforced before a packet's data is fetched (credit.ts).
 * - Guest receive (rx.c, copy mode): frames the bridge delivers wait in a
 *   queue of at most RX_QUEUE_MAX; each takes as many posted rx requests as
 *   it needs 4 KiB pages, is written into them with one batched grant copy
 *   per round, and is answered in the same slots (offset 0, status = bytes,
 *   NETRXF_more_data on all but the last).
 * - Notification: responses are published by writing rsp_prod and sending an
 *   event every round that produced some (a posted message costs less than
 *   the mirror round trip ring.h's rsp_event test would need here; an extra
 *   event is harmless).  Before sleeping the loop arms req_event on the rings
 *   it waits on and re-checks after one mirror sync (RING_FINAL_CHECK_FOR_REQUESTS).
 * - Rounds are bounded (TX_BUDGET units, RX_BUDGET frames) and yield between
 *   them, so a flooding guest shares the process with the others.
 */
import {
  ETH_HLEN,
  GNTST,
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETIF_RX_ENTRY_SIZE,
  NETIF_TX_ENTRY_SIZE,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_more_data,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  RING_REQ_EVENT_OFFSET,
  RING_RSP_PROD_OFFSET,
  XEN_PAGE_SIZE,
  XenError,
  decodeRxRequest,
  encodeRxResponse,
  encodeTxResponse,
  gntstMessage,
  type DomId,
  type EvtchnPort,
  type NetifRxRequest,
} from '@xenbox/abi';
import { BackRing, Mirrors, type Evtchn, type GrantMapper, type HypervisorConnection, type MirrorPage } from '@xenbox/libxen';
import type { Logger } from '@xenbox/libxen';
import { completeChecksum } from './checksum.js';
import { CreditLimiter } from './credit.js';
import type { BridgePort, Frame } from './frame.js';
import { TxAssembler, type TxUnit } from './tx-assembler.js';
import type { VifCounters } from './vif-stats.js';

/** Frames waiting for rx requests before new ones are dropped (Linux's rx queue is bounded the same way). */
export const RX_QUEUE_MAX = 256;
/** Packets (units) taken from the tx ring per round. */
const TX_BUDGET = 256;
/** Tx slots consumed per round (a batched copy stays well under GNTTAB_MAX_BATCH). */
const TX_SLOT_BUDGET = 256;
/** Frames written to the guest per round. */
const RX_BUDGET = 256;
/**
 * How often an idle vif looks at its rings without being told to.  A lost
 * event (a frontend that missed our req_event, or a notification lost on
 * the way) would otherwise stall the vif for good; the look costs one mirror
 * sync.  Work found this way is counted and logged (`lostWakeups`): it
 * means a notification went missing.
 */
export const RING_POLL_MS = 1000;
/** VLAN tag a frame may carry beyond the MTU (Linux bridge's is_skb_forwardable allows it). */
const VLAN_HLEN = 4;

export interface VifQueueParams {
  hv: HypervisorConnection;
  mapper: GrantMapper;
  evtchn: Evtchn;
  log: Logger;
  name: string;
  frontend: DomId;
  txPage: MirrorPage;
  txHandle: number;
  rxPage: MirrorPage;
  rxHandle: number;
  port: EvtchnPort;
  counters: VifCounters;
  mtu: number;
  rate: { bytes: number; usecs: number } | null;
  /** The frontend wrote feature-sg=1: frames may span several rx slots. */
  frontendSg: boolean;
  /** The frontend did not write feature-no-csum-offload=1: it accepts NETRXF_csum_blank. */
  frontendCsumOffload: boolean;
  /** The bridge side: where assembled guest packets go. */
  input(from: BridgePort, frame: Frame): void;
  /** The frontend broke the ring protocol beyond repair: the queue stopped. */
  onFatal(why: string): void;
  /** The first response (tx or rx) went to the frontend on this connection (supervisor restart metrics). */
  onFirstResponse?(): void;
}

export class VifQueue implements BridgePort {
  readonly name: string;
  private readonly tx: BackRing;
  private readonly rx: BackRing;
  private readonly assembler = new TxAssembler();
  private readonly rxQueue: Frame[] = [];
  /** Whether a response was published yet (onFirstResponse). */
  private answered = false;
  private limiter: CreditLimiter | null;
  /** A packet consumed but over its rate credit: it goes first once credit returns. */
  private held: TxUnit | null = null;
  private creditTimer: NodeJS.Timeout | null = null;
  private running = false;
  private pending = false;
  private closed = false;
  /** Set when the frontend broke the protocol: nothing more is served. */
  disabled: string | null = null;
  private readonly c: VifCounters;
  private readonly unsubscribe: () => void;
  private readonly poller: NodeJS.Timeout;
  /** The current round was started by the poll, not by an event or a delivery. */
  private polling = false;
  /** Rounds started by the poll that found work: notifications that went missing. */
  lostWakeups = 0;
  /** Last error reasons, for the log without flooding it. */
  private lastRefusal = '';

  constructor(private readonly p: VifQueueParams) {
    this.name = p.name;
    this.c = p.counters;
    this.tx = BackRing.attach(p.txPage, NETIF_TX_ENTRY_SIZE);
    this.rx = BackRing.attach(p.rxPage, NETIF_RX_ENTRY_SIZE);
    this.limiter = p.rate ? new CreditLimiter(p.rate.bytes, p.rate.usecs) : null;
    this.unsubscribe = p.evtchn.onEvent(p.port, () => this.kick());
    this.poller = setInterval(() => this.poll(), RING_POLL_MS);
    this.poller.unref();
  }

  /** A new `rate` (the key changed, as xen_net_rate_changed follows it). */
  setRate(rate: { bytes: number; usecs: number } | null): void {
    this.limiter = rate ? new CreditLimiter(rate.bytes, rate.usecs) : null;
    this.kick();
  }

  // ---- bridge side --------------------------------------------------------

  deliver(frame: Frame): void {
    if (this.closed || this.disabled) return;
    const len = frame.data.length;
    if (len > this.p.mtu + ETH_HLEN + VLAN_HLEN || (len > XEN_PAGE_SIZE && !this.p.frontendSg) || this.rxQueue.length >= RX_QUEUE_MAX) {
      this.c.rx_dropped++;
      return;
    }
    if (frame.csumBlank && !this.p.frontendCsumOffload) {
      const filled = completeChecksum(frame.data);
      frame = { data: filled ?? frame.data, csumBlank: false, dataValidated: filled !== null };
    }
    this.rxQueue.push(frame);
    this.kick();
  }

  // ---- the service loop -----------------------------------------------------

  /** The 1 s look at an idle vif (see RING_POLL_MS). */
  private poll(): void {
    // A rate-limited vif waits for its credit timer, which kicks it.
    if (this.running || this.closed || this.disabled || this.held) return;
    this.kick();
    this.polling = true;
  }

  /** A round found work: if the poll started it, a notification was lost. */
  private foundWork(where: string): void {
    if (!this.polling) return;
    this.polling = false;
    if (this.lostWakeups++ === 0) this.p.log.warn({ vif: this.name, where }, 'work found by the periodic ring check: a notification was lost');
  }

  /** Work may be waiting: serve it (the loop starts after the current code, so a bridge's burst of deliveries is one round). */
  kick(): void {
    if (this.closed || this.disabled) return;
    this.polling = false;
    this.pending = true;
    if (this.running) return;
    this.running = true;
    queueMicrotask(() => void this.run());
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        if (this.closed || this.disabled) return;
        if (this.pending) {
          this.pending = false;
          const rxMore = await this.doRx();
          const txMore = await this.doTx();
          if (txMore || rxMore) this.pending = true;
          await new Promise((r) => setImmediate(r));
          continue;
        }
        if (await this.finalCheck()) {
          this.pending = true;
          continue;
        }
        if (this.pending) continue;
        return;
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.running = false;
    }
  }

  private fail(e: unknown): void {
    const err = e as XenError;
    if (this.closed) return;
    if (err.errno === 'EFAULT') {
      // A ring page went away: the frontend's domain died or revoked it.  The xenbus side tears down.
      this.p.log.info({ vif: this.name, err: err.message }, 'ring page gone');
      this.disabled = err.message;
      return;
    }
    this.disabled = err.message ?? String(e);
    this.p.log.error({ vif: this.name, err: this.disabled }, 'vif disabled: the frontend broke the ring protocol');
    this.p.onFatal(this.disabled);
  }

  // ---- guest transmit ---------------------------------------------------------

  /** One round of the tx ring; true if more may be waiting. */
  private async doTx(): Promise<boolean> {
    const units: TxUnit[] = [];
    if (this.held) {
      if (this.overCredit(this.held)) return false;
      units.push(this.held);
      this.held = null;
    }
    let avail = this.tx.unconsumedRequests();
    let slots = 0;
    while (avail > 0 && units.length < TX_BUDGET && slots < TX_SLOT_BUDGET) {
      const unit = this.assembler.push(this.tx.takeRequest());
      avail--;
      slots++;
      if (!unit) continue;
      if (!unit.error && unit.size > 0 && this.overCredit(unit)) {
        this.held = unit;
        break;
      }
      units.push(unit);
    }
    if (units.length === 0) return false;
    this.foundWork('tx ring');
    const frames = await this.fetch(units);
    if (this.closed) return false; // left the bridge meanwhile: do not teach it our address again
    for (const f of frames) this.p.input(this, f);
    // Let the receiving vifs' rounds (started in microtasks by the deliveries) issue their copies
    // first: the frames' path to the other guests is the latency that matters, our answers can follow.
    if (frames.length) await Promise.resolve();
    this.respondTx(units);
    return this.held === null && avail > 0;
  }

  /** Charge a packet to the rate credit; if it must wait, arm the refill and say so. */
  private overCredit(unit: TxUnit): boolean {
    if (!this.limiter) return false;
    const waitUs = this.limiter.take(unit.size);
    if (waitUs === 0) return false;
    this.creditTimer ??= setTimeout(() => {
      this.creditTimer = null;
      this.kick();
    }, Math.ceil(waitUs / 1000));
    return true;
  }

  /** Grant-copy the data of every good unit in one batch; units whose copy failed are marked. */
  private async fetch(units: TxUnit[]): Promise<Frame[]> {
    const segs: Array<{ dom: DomId; ref: number; offset: number; len: number }> = [];
    for (const u of units) {
      if (u.error || u.size === 0) continue;
      for (const s of u.slots) if (!s.extra && s.len > 0) segs.push({ dom: this.p.frontend, ref: s.req.gref, offset: s.req.offset, len: s.len });
    }
    if (segs.length === 0) return [];
    const results = await this.p.mapper.read(segs);
    const frames: Frame[] = [];
    let k = 0;
    for (const u of units) {
      if (u.error || u.size === 0) continue;
      const data = new Uint8Array(u.size);
      let at = 0;
      for (const s of u.slots) {
        if (s.extra || s.len === 0) continue;
        const r = results[k++]!;
        if (r.status !== GNTST.okay || !r.data) {
          u.error ??= `grant copy of ref ${s.req.gref}: ${gntstMessage(r.status)}`;
          continue;
        }
        data.set(r.data, at);
        at += s.len;
      }
      if (!u.error) frames.push({ data, csumBlank: (u.flags & NETTXF_csum_blank) !== 0, dataValidated: (u.flags & NETTXF_data_validated) !== 0 });
    }
    return frames;
  }

  /** Answer every slot of the round in ring order, publish, notify. */
  private respondTx(units: TxUnit[]): void {
    for (const u of units) {
      const continuation = u.error === 'rest of a refused chain';
      if (u.error) {
        if (!continuation) {
          this.c.tx_errors++;
          this.noteRefusal(u.error);
        }
      } else if (u.size > 0) {
        this.c.tx_packets++;
        this.c.tx_bytes += u.size;
      }
      for (const s of u.slots) {
        // An extra slot's answer leaves its first bytes as Linux's make_tx_response does (only status is set).
        const rsp = s.extra ? { id: s.req.gref & 0xffff, status: NETIF_RSP_NULL } : { id: s.req.id, status: u.error ? NETIF_RSP_ERROR : NETIF_RSP_OKAY };
        this.tx.queueResponse(encodeTxResponse(rsp));
      }
    }
    this.publish(this.p.txPage, this.tx);
  }

  private noteRefusal(why: string): void {
    if (why === this.lastRefusal) return;
    this.lastRefusal = why;
    this.p.log.warn({ vif: this.name, why }, 'tx packet refused');
  }

  // ---- guest receive ----------------------------------------------------------

  /** Slots the frame at the head of the queue needs. */
  private headSlots(): number {
    const f = this.rxQueue[0];
    return f ? Math.max(1, Math.ceil(f.data.length / XEN_PAGE_SIZE)) : 0;
  }

  /** One round of the rx queue; true if more may be served now. */
  private async doRx(): Promise<boolean> {
    if (this.rxQueue.length === 0) return false;
    let avail = this.rx.unconsumedRequests();
    const plan: Array<{ frame: Frame; reqs: NetifRxRequest[] }> = [];
    const segs: Array<{ dom: DomId; ref: number; offset: number; data: Uint8Array }> = [];
    while (this.rxQueue.length > 0 && plan.length < RX_BUDGET) {
      const need = this.headSlots();
      if (need > avail) break;
      const frame = this.rxQueue.shift()!;
      const reqs: NetifRxRequest[] = [];
      for (let i = 0; i < need; i++) {
        const req = decodeRxRequest(this.rx.takeRequest());
        reqs.push(req);
        const chunk = frame.data.subarray(i * XEN_PAGE_SIZE, Math.min(frame.data.length, (i + 1) * XEN_PAGE_SIZE));
        segs.push({ dom: this.p.frontend, ref: req.gref, offset: 0, data: chunk });
      }
      avail -= need;
      plan.push({ frame, reqs });
    }
    if (plan.length === 0) return false;
    this.foundWork('rx ring');
    const statuses = await this.p.mapper.write(segs);
    let k = 0;
    for (const { frame, reqs } of plan) {
      let ok = true;
      reqs.forEach((req, i) => {
        const st = statuses[k];
        const len = segs[k++]!.data.length;
        const last = i === reqs.length - 1;
        let flags = last ? 0 : NETRXF_more_data;
        if (i === 0) flags |= frame.csumBlank ? NETRXF_csum_blank | NETRXF_data_validated : frame.dataValidated ? NETRXF_data_validated : 0;
        if (st !== GNTST.okay) ok = false;
        this.rx.queueResponse(encodeRxResponse({ id: req.id, offset: 0, flags, status: st === GNTST.okay ? len : NETIF_RSP_ERROR }));
      });
      if (ok) {
        this.c.rx_packets++;
        this.c.rx_bytes += frame.data.length;
      } else {
        this.c.rx_errors++;
      }
    }
    this.publish(this.p.rxPage, this.rx);
    return this.rxQueue.length > 0 && this.headSlots() <= avail;
  }

  // ---- ring plumbing ----------------------------------------------------------

  /** Publish rsp_prod and tell the frontend (see the header on why always). */
  private publish(page: MirrorPage, ring: BackRing): void {
    page.setU32(RING_RSP_PROD_OFFSET, ring.rspProdPvt);
    if (!this.answered && ring.rspProdPvt !== 0) {
      this.answered = true;
      this.p.onFirstResponse?.();
    }
    try {
      this.p.evtchn.notify(this.p.port);
    } catch {
      // ENOTCONN: the frontend is gone; the xenbus side will tear down.
    }
  }

  /**
   * RING_FINAL_CHECK_FOR_REQUESTS on the rings we wait on, with one mirror
   * sync for both: true if work turned up.
   */
  private async finalCheck(): Promise<boolean> {
    const pages: MirrorPage[] = [];
    const waitTx = this.held === null;
    if (waitTx) {
      if (this.tx.unconsumedRequests() > 0) return true;
      this.p.txPage.setU32(RING_REQ_EVENT_OFFSET, (this.tx.reqCons + 1) >>> 0);
      pages.push(this.p.txPage);
    }
    const need = this.headSlots();
    if (need > 0) {
      if (this.rx.unconsumedRequests() >= need) return true;
      this.p.rxPage.setU32(RING_REQ_EVENT_OFFSET, (this.rx.reqCons + need) >>> 0);
      pages.push(this.p.rxPage);
    }
    if (pages.length === 0) return false;
    await Mirrors.of(this.p.hv).sync(pages);
    if (waitTx && this.tx.unconsumedRequests() > 0) return true;
    return need > 0 && this.rx.unconsumedRequests() >= need;
  }

  /** Frames waiting for rx requests. */
  get queued(): number {
    return this.rxQueue.length;
  }

  /** Stop serving and let go of the rings and the channel (xenvif_disconnect_data). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.creditTimer) clearTimeout(this.creditTimer);
    clearInterval(this.poller);
    this.c.rx_dropped += this.rxQueue.length;
    this.rxQueue.length = 0;
    this.unsubscribe();
    await this.p.evtchn.close(this.p.port).catch(() => undefined);
    await this.p.mapper.unmap([{ handle: this.p.txHandle, page: this.p.txPage }, { handle: this.p.rxHandle, page: this.p.rxPage }]).catch(() => undefined);
  }
}
