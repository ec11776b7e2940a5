/**
 * A netif frontend for process domains (tests, benchmarks, the HVM stub
 * domain's virtio-net): Linux drivers/net/xen-netfront.c's protocol with
 * xenbox's mirrored pages.
 *
 *   handshake (talk_to_netback): wait for the backend's InitWait; grant a tx
 *     and an rx ring page, allocate one event channel, write tx-ring-ref,
 *     rx-ring-ref, event-channel, request-rx-copy=1, feature-rx-notify=1,
 *     feature-sg=1, feature-no-csum-offload=1 (we never leave a checksum
 *     blank and want complete ones), Initialised; on the backend's
 *     Connected, Connected.
 *   tx: a frame is copied into pages granted read-only to the backend, one
 *     slot per 4 KiB (first slot size = whole frame, NETTXF_more_data on all
 *     but the last; more than one slot only if the backend offers
 *     feature-sg); the ids come back in tx responses.
 *   rx: the rx ring is kept stocked with requests, each for the page of the
 *     slot it sits in (id = slot, as netfront's xennet_rxidx), granted
 *     writable; a response is
 *     read from the page of its slot, slots chained by NETRXF_more_data make
 *     one frame, extra-info slots are skipped; the request is posted again.
 *   reconnect: the frontend follows its `backend` key and the backend's
 *     state.  When the backend goes away (its domain died, the key points
 *     somewhere new, it closes), the rings are dropped and the handshake
 *     starts over with whatever backend the key names, reusing the same
 *     pages; frames sent meanwhile wait for the new connection.
 *
 * Notifications: tx requests are published by writing req_prod and sending
 * an event at once (a posted message; an unneeded event is harmless, a
 * barrier first would cost a round trip on every frame's path).  Before
 * sleeping the frontend arms rsp_event on both rings and re-checks after one
 * mirror sync (RING_FINAL_CHECK_FOR_RESPONSES); on that same barrier it
 * decides whether the rx requests it re-posted need an event (req_event,
 * RING_PUSH_REQUESTS_AND_CHECK_NOTIFY), so a backend that is not waiting
 * for rx buffers is not woken for them.  rx pages whose responses were seen
 * only through that sync are synced before they are read.
 *
 * `raw` writes arbitrary slots and indices, for hostile-frontend tests.
 */
import {
  NETIF_RX_ENTRY_SIZE,
  NETIF_TX_ENTRY_SIZE,
  NETRXF_extra_info,
  NETRXF_more_data,
  NETTXF_more_data,
  RING_HEADER_SIZE,
  RING_REQ_EVENT_OFFSET,
  RING_REQ_PROD_OFFSET,
  RING_RSP_EVENT_OFFSET,
  RING_RSP_PROD_OFFSET,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_MAX_TX_SIZE,
  XEN_PAGE_SIZE,
  XenError,
  XenbusState,
  decodeRxResponse,
  decodeTxResponse,
  encodeRxRequest,
  encodeTxRequest,
  frontendPath,
  parseMac,
  ringNeedsNotify,
  type DomId,
  type EvtchnPort,
  type NetifRxRequest,
  type NetifTxRequest,
  type NetifTxResponse,
} from '@xenbox/abi';
import { Evtchn } from './evtchn.js';
import { GrantTable, allocOwnPages, type OwnPage } from './gnttab.js';
import type { HypervisorConnection } from './hypervisor-connection.js';
import type { Logger } from './logger.js';
import { Mirrors, type MirrorPage } from './mirror.js';
import { FrontRing } from './ring.js';
import { readXenbusState, readXenbusUint, switchXenbusState, writeXenbusKeys } from './xenbus.js';
import type { XenstoreClient, XsWatch } from './xenstore-client.js';

/** tx and rx buffers: one page per ring slot (netif rings have 256). */
const RING_SLOTS = 256;
const ETH_MIN = 14;

export interface NetfrontOptions {
  hv: HypervisorConnection;
  xs: XenstoreClient;
  domid: DomId;
  devid: number;
  log?: Logger;
  /** A grant table this domain already opened (several frontends in one domain share it). */
  grants?: GrantTable;
  /** How long connect() waits for the first connection (default 10 s). */
  timeoutMs?: number;
  /** rx requests kept posted (default 256, the ring's size; 0 = a deaf frontend, for tests). */
  rxBuffers?: number;
}

export interface NetfrontStats {
  txPackets: number;
  txBytes: number;
  txErrors: number;
  rxPackets: number;
  rxBytes: number;
  rxErrors: number;
  reconnects: number;
}

type FrameHandler = (frame: Uint8Array) => void;


/** One connection to one backend: rings, grants, channel. */
interface Link {
  backendId: DomId;
  backendPath: string;
  port: EvtchnPort;
  tx: FrontRing;
  rx: FrontRing;
  txRingRef: number;
  rxRingRef: number;
  txRefs: number[];
  rxRefs: number[];
  /** tx buffer ids not in flight. */
  txFree: number[];
  /** 1 where a tx buffer id is in flight. */
  txBusy: Uint8Array;
  /** rx req_prod as of the last notify check. */
  rxNotifiedProd: number;
  sg: boolean;
  connected: boolean;
  unsubscribe: () => void;
}

export class Netfront {
  readonly stats: NetfrontStats = { txPackets: 0, txBytes: 0, txErrors: 0, rxPackets: 0, rxBytes: 0, rxErrors: 0, reconnects: 0 };
  /** Every tx response seen (id, status), newest last, bounded: for tests of what the backend answered. */
  readonly txResponses: NetifTxResponse[] = [];
  mac: Uint8Array = new Uint8Array(6);
  private link: Link | null = null;
  private readonly handlers = new Set<FrameHandler>();
  private readonly spaceWaiters: Array<() => void> = [];
  private readonly connectWaiters: Array<() => void> = [];
  private wake: (() => void) | null = null;
  private woken = false;
  private closing = false;
  private running = false;
  private pending = false;
  private rxNeedsDataSync = false;
  private pushScheduled = false;
  private backendWatch: XsWatch | null = null;
  private frontWatch: XsWatch | null = null;
  private lifecycleDone: Promise<void> = Promise.resolve();
  /** rx chain being assembled across slots. */
  private rxChunks: Uint8Array[] = [];
  private rxBad = false;
  private rxSkipExtras = false;
  readonly raw: NetfrontRaw;

  private constructor(
    private readonly o: NetfrontOptions,
    private readonly grants: GrantTable,
    private readonly ringPages: OwnPage[],
    private readonly txBufs: OwnPage[],
    private readonly rxBufs: OwnPage[],
  ) {
    this.raw = new NetfrontRaw(this);
  }

  /** Allocate the pages, start following xenstore, and wait for the first connection. */
  static async connect(o: NetfrontOptions): Promise<Netfront> {
    const grants = o.grants ?? (await GrantTable.of(o.hv));
    const pages = await allocOwnPages(o.hv, 2 + 2 * RING_SLOTS);
    const nf = new Netfront(o, grants, pages.slice(0, 2), pages.slice(2, 2 + RING_SLOTS), pages.slice(2 + RING_SLOTS));
    await nf.start();
    try {
      await nf.waitConnected(o.timeoutMs ?? 10_000);
    } catch (e) {
      await nf.close().catch(() => undefined);
      throw e;
    }
    return nf;
  }

  get dir(): string {
    return frontendPath(this.o.domid, 'vif', this.o.devid);
  }

  get connected(): boolean {
    return this.link?.connected ?? false;
  }

  get backendId(): DomId | null {
    return this.link?.backendId ?? null;
  }

  private get log(): Logger | undefined {
    return this.o.log;
  }

  private async start(): Promise<void> {
    const mac = await this.o.xs.tryRead(`${this.dir}/mac`);
    const parsed = mac === undefined ? null : parseMac(mac);
    if (!parsed) throw new XenError('EINVAL', `${this.dir}/mac = ${JSON.stringify(mac)} is not a MAC address`);
    this.mac = parsed;
    this.frontWatch = await this.o.xs.watch(`${this.dir}/backend`);
    void this.pump(this.frontWatch);
    this.lifecycleDone = this.lifecycle();
  }

  /** Wake the lifecycle loop on every event of a watch. */
  private async pump(w: XsWatch): Promise<void> {
    for await (const _ of w) this.poke();
  }

  private poke(): void {
    this.woken = true;
    this.wake?.();
  }

  private async sleep(): Promise<void> {
    if (!this.woken) await new Promise<void>((r) => (this.wake = r));
    this.wake = null;
    this.woken = false;
  }

  /** Resolves once connected (now or after a reconnect). */
  waitConnected(timeoutMs = 10_000): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((res, rej) => {
      const t = setTimeout(() => {
        const i = this.connectWaiters.indexOf(done);
        if (i >= 0) this.connectWaiters.splice(i, 1);
        rej(new XenError('ETIMEDOUT', `${this.dir}: not connected to a backend after ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        res();
      };
      this.connectWaiters.push(done);
    });
  }

  // ---- the xenbus side ---------------------------------------------------------

  /** netback_changed, run as a loop over what xenstore says now. */
  private async lifecycle(): Promise<void> {
    const xs = this.o.xs;
    let watched = '';
    while (!this.closing) {
      try {
        const be = await xs.tryRead(`${this.dir}/backend`);
        const beIdText = await xs.tryRead(`${this.dir}/backend-id`);
        if ((await xs.tryRead(`${this.dir}/state`)) === undefined) {
          // The toolstack removed the device (xl network-detach, domain teardown).
          await this.dropLink('device removed');
          break;
        }
        if (be !== watched) {
          if (this.link) await this.dropLink(`backend moved to ${be}`);
          await this.backendWatch?.unwatch().catch(() => undefined);
          this.backendWatch = null;
          watched = be ?? '';
          if (be) {
            this.backendWatch = await xs.watch(`${be}/state`);
            void this.pump(this.backendWatch);
          }
        }
        if (be && beIdText !== undefined && /^\d+$/.test(beIdText)) await this.step(be, Number(beIdText));
      } catch (e) {
        this.log?.warn({ vif: this.dir, err: (e as Error).message }, 'netfront: state change failed');
      }
      await this.sleep();
    }
  }

  /** One look at the backend's state, and what we do about it. */
  private async step(be: string, beId: DomId): Promise<void> {
    const xs = this.o.xs;
    const beState = await readXenbusState(xs, be);
    const mine = await readXenbusState(xs, this.dir);
    const link = this.link;
    if (beState === XenbusState.Closing) {
      // The backend (or the toolstack removing the device) asks us to close: xenbus_frontend_closed.
      if (link) await this.dropLink('backend is Closing');
      if (mine !== XenbusState.Closed) await switchXenbusState(xs, this.dir, XenbusState.Closed);
      return;
    }
    if (link && Evtchn.of(this.o.hv).peerClosed(link.port)) {
      // The backend's domain died (its end of the channel closed): wait for the toolstack to name a new one.
      await this.dropLink('the backend closed its event channel (its domain died?)');
      await switchXenbusState(xs, this.dir, XenbusState.Initialising);
      return;
    }
    const gone = beState === XenbusState.Unknown || beState === XenbusState.Closed || beState === XenbusState.Initialising;
    if (link && (gone || (link.connected && beState === XenbusState.InitWait))) {
      await this.dropLink(`backend is ${beState}`);
      await switchXenbusState(xs, this.dir, XenbusState.Initialising);
      this.poke(); // look again with no link
      return;
    }
    if (!this.link) {
      if (beState === XenbusState.InitWait) {
        await this.setUp(be, beId);
      } else if (beState === XenbusState.Closed && mine !== XenbusState.Initialising && (await xs.tryRead(`${be}/online`)) === '1') {
        await switchXenbusState(xs, this.dir, XenbusState.Initialising); // ask the backend to reconnect (not when the toolstack is removing it)
      }
      return;
    }
    if (!this.link.connected && beState === XenbusState.Connected) {
      this.link.connected = true;
      await switchXenbusState(xs, this.dir, XenbusState.Connected);
      this.log?.info({ vif: this.dir, backend: be }, 'netfront connected');
      this.connectWaiters.splice(0).forEach((w) => w());
      this.wakeSenders();
      this.kick();
    }
  }

  /** talk_to_netback: rings, grants, channel, keys, Initialised. */
  private async setUp(be: string, beId: DomId): Promise<void> {
    const { hv, xs } = this.o;
    const sg = (await readXenbusUint(xs, be, 'feature-sg', 0).catch(() => 0)) === 1;
    if ((await readXenbusUint(xs, be, 'feature-rx-copy', 0).catch(() => 0)) !== 1) {
      throw new XenError('EOPNOTSUPP', `${be}: backend does not offer feature-rx-copy`);
    }
    const [txPage, rxPage] = this.ringPages as [OwnPage, OwnPage];
    const tx = FrontRing.init(txPage.page, NETIF_TX_ENTRY_SIZE);
    const rx = FrontRing.init(rxPage.page, NETIF_RX_ENTRY_SIZE);
    const txRingRef = this.grants.grantAccess(beId, txPage.gfn);
    const rxRingRef = this.grants.grantAccess(beId, rxPage.gfn);
    const txRefs = this.txBufs.map((p) => this.grants.grantAccess(beId, p.gfn, true));
    const rxRefs = this.rxBufs.map((p) => this.grants.grantAccess(beId, p.gfn));
    const posted = Math.max(0, Math.min(RING_SLOTS, this.o.rxBuffers ?? RING_SLOTS));
    for (let i = 0; i < posted; i++) rx.queueRequest(encodeRxRequest({ id: i, gref: rxRefs[i]! }));
    rxPage.page.setU32(RING_REQ_PROD_OFFSET, rx.reqProdPvt);
    await this.grants.publish();
    await Mirrors.of(hv).sync([txPage.page, rxPage.page]);
    const evtchn = Evtchn.of(hv);
    const port = await evtchn.allocUnbound(beId);
    const link: Link = {
      backendId: beId,
      backendPath: be,
      port,
      tx,
      rx,
      txRingRef,
      rxRingRef,
      txRefs,
      rxRefs,
      txFree: Array.from({ length: RING_SLOTS }, (_, i) => RING_SLOTS - 1 - i),
      txBusy: new Uint8Array(RING_SLOTS),
      rxNotifiedProd: rx.reqProdPvt,
      sg,
      connected: false,
      unsubscribe: () => undefined,
    };
    const offEvent = evtchn.onEvent(port, () => {
      if (this.link === link) this.kick(true);
    });
    const offClosed = evtchn.onPeerClosed(port, () => {
      if (this.link === link) this.poke();
    });
    link.unsubscribe = () => {
      offEvent();
      offClosed();
    };
    this.link = link;
    this.rxChunks = [];
    this.rxBad = false;
    this.rxSkipExtras = false;
    await writeXenbusKeys(xs, this.dir, {
      'tx-ring-ref': txRingRef,
      'rx-ring-ref': rxRingRef,
      'event-channel': port,
      'request-rx-copy': 1,
      'feature-rx-notify': 1,
      'feature-sg': 1,
      'feature-gso-tcpv4': 0,
      'feature-gso-tcpv6': 0,
      'feature-no-csum-offload': 1,
      'feature-ipv6-csum-offload': 0,
    });
    await switchXenbusState(xs, this.dir, XenbusState.Initialised);
    this.log?.info({ vif: this.dir, backend: be, txRingRef, rxRingRef, port }, 'netfront initialised');
  }

  /** Forget a connection: channel closed, grants ended (those still in use stay behind). */
  private async dropLink(why: string): Promise<void> {
    const link = this.link;
    if (!link) return;
    this.link = null;
    if (link.connected) this.stats.reconnects++;
    link.unsubscribe();
    this.log?.info({ vif: this.dir, why }, 'netfront lost its backend');
    await Evtchn.of(this.o.hv).close(link.port).catch(() => undefined);
    for (const ref of [link.txRingRef, link.rxRingRef, ...link.txRefs, ...link.rxRefs]) await this.grants.endAccess(ref).catch(() => false);
  }

  /** Close the device from our side (Closing, then Closed once the backend follows). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.poke();
    await this.lifecycleDone.catch(() => undefined);
    await this.frontWatch?.unwatch().catch(() => undefined);
    await this.backendWatch?.unwatch().catch(() => undefined);
    if (this.link) {
      await switchXenbusState(this.o.xs, this.dir, XenbusState.Closing).catch(() => undefined);
      await this.dropLink('closed by us');
      await switchXenbusState(this.o.xs, this.dir, XenbusState.Closed).catch(() => undefined);
    }
    this.connectWaiters.length = 0;
    this.wakeSenders();
  }

  // ---- transmit ----------------------------------------------------------------

  /**
   * Queue a frame for the backend; resolves once it is on the ring (not when
   * the backend answered).  Waits while disconnected or while the ring is full.
   */
  async send(frame: Uint8Array): Promise<void> {
    if (frame.length < ETH_MIN || frame.length > XEN_NETIF_MAX_TX_SIZE) throw new XenError('EINVAL', `frame of ${frame.length} bytes (must be ${ETH_MIN}-${XEN_NETIF_MAX_TX_SIZE})`);
    const nslots = Math.ceil(frame.length / XEN_PAGE_SIZE);
    for (;;) {
      if (this.closing) throw new XenError('ENOTCONN', `${this.dir} is closed`);
      const link = this.link;
      if (link?.connected) {
        if (nslots > 1 && !link.sg) throw new XenError('E2BIG', `frame of ${frame.length} bytes needs ${nslots} slots; the backend does not offer feature-sg`);
        if (link.txFree.length >= nslots && link.tx.freeRequests() >= nslots) {
          this.queueFrame(link, frame, nslots);
          return;
        }
      }
      await new Promise<void>((r) => this.spaceWaiters.push(r));
    }
  }

  private queueFrame(link: Link, frame: Uint8Array, nslots: number): void {
    for (let i = 0; i < nslots; i++) {
      const id = link.txFree.pop()!;
      link.txBusy[id] = 1;
      const chunk = frame.subarray(i * XEN_PAGE_SIZE, Math.min(frame.length, (i + 1) * XEN_PAGE_SIZE));
      this.txBufs[id]!.page.write(0, chunk);
      link.tx.queueRequest(encodeTxRequest({ gref: link.txRefs[id]!, offset: 0, flags: i < nslots - 1 ? NETTXF_more_data : 0, id, size: i === 0 ? frame.length : chunk.length }));
    }
    this.stats.txPackets++;
    this.stats.txBytes += frame.length;
    this.schedulePush();
  }

  /**
   * Publish queued requests once per turn of the event loop (many sends, one
   * event): setImmediate, not a microtask, so a loop of awaited sends
   * shares one push.
   */
  private schedulePush(): void {
    if (this.pushScheduled) return;
    this.pushScheduled = true;
    setImmediate(() => {
      this.pushScheduled = false;
      const link = this.link;
      if (link) this.pushTx(link);
    });
  }

  /** @internal Write req_prod and notify. */
  pushTx(link: Link): void {
    this.ringPages[0]!.page.setU32(RING_REQ_PROD_OFFSET, link.tx.reqProdPvt);
    this.notify(link);
  }

  /** @internal Flush our writes and send an event to the backend. */
  notify(link: Link): void {
    try {
      Evtchn.of(this.o.hv).notify(link.port);
    } catch {
      this.poke(); // the backend is gone
    }
  }

  private wakeSenders(): void {
    this.spaceWaiters.splice(0).forEach((w) => w());
  }

  // ---- receive ------------------------------------------------------------------

  /** Run `cb` for every frame received; returns an unsubscribe function. */
  onFrame(cb: FrameHandler): () => void {
    this.handlers.add(cb);
    return () => this.handlers.delete(cb);
  }

  /** Received frames as an async iterator (from now on). */
  frames(): AsyncIterableIterator<Uint8Array> {
    const queue: Uint8Array[] = [];
    let waiter: (() => void) | null = null;
    const off = this.onFrame((f) => {
      queue.push(f);
      waiter?.();
    });
    const it: AsyncIterableIterator<Uint8Array> = {
      next: async () => {
        while (queue.length === 0) await new Promise<void>((r) => (waiter = r));
        waiter = null;
        return { value: queue.shift()!, done: false };
      },
      return: async () => {
        off();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  // ---- the event loop -----------------------------------------------------------

  /** @internal An event (fresh mirrors) or local work. */
  kick(fromEvent = false): void {
    if (fromEvent) this.rxNeedsDataSync = false;
    this.pending = true;
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        const link = this.link;
        if (!link?.connected) return;
        if (this.pending) {
          this.pending = false;
          await this.service(link);
          continue;
        }
        if (await this.finalCheck(link)) {
          this.pending = true;
          continue;
        }
        if (this.pending) continue;
        return;
      }
    } catch (e) {
      this.log?.warn({ vif: this.dir, err: (e as Error).message }, 'netfront: ring failed');
      this.poke();
    } finally {
      this.running = false;
    }
  }

  private async service(link: Link): Promise<void> {
    this.takeTxResponses(link);
    await this.takeRxResponses(link);
  }

  private takeTxResponses(link: Link): void {
    let freed = false;
    while (link.tx.unconsumedResponses() > 0) {
      const rsp = decodeTxResponse(link.tx.takeResponse());
      this.txResponses.push(rsp);
      if (this.txResponses.length > 4096) this.txResponses.splice(0, 2048);
      if (rsp.status < 0) this.stats.txErrors++;
      if (rsp.id < RING_SLOTS && link.txBusy[rsp.id]) {
        link.txBusy[rsp.id] = 0;
        link.txFree.push(rsp.id);
        freed = true;
      }
    }
    if (freed) this.wakeSenders();
  }

  private async takeRxResponses(link: Link): Promise<void> {
    const rxPage = this.ringPages[1]!.page;
    const prod = rxPage.u32(RING_RSP_PROD_OFFSET);
    if (link.rx.unconsumedResponses() === 0) return;
    if (this.rxNeedsDataSync) {
      // Seen through our own ring sync, not an event: bring those pages in first.
      const pages: MirrorPage[] = [];
      for (let i = link.rx.rspCons; i !== prod; i = (i + 1) >>> 0) pages.push(this.rxBufs[i & (RING_SLOTS - 1)]!.page);
      await Mirrors.of(this.o.hv).sync(pages);
      this.rxNeedsDataSync = false;
    }
    let reposted = 0;
    while (link.rx.unconsumedResponses() > 0) {
      const slot = link.rx.rspCons & (RING_SLOTS - 1);
      const raw = link.rx.takeResponse();
      this.takeRxSlot(raw, slot);
      // A request's buffer is the page of the slot it sits in (so its response, in the same slot, is found there).
      const next = link.rx.reqProdPvt & (RING_SLOTS - 1);
      link.rx.queueRequest(encodeRxRequest({ id: next, gref: link.rxRefs[next]! }));
      reposted++;
    }
    // Published now; whether the backend needs an event is decided on the final check's barrier.
    if (reposted) rxPage.setU32(RING_REQ_PROD_OFFSET, link.rx.reqProdPvt);
  }

  /** One rx response: a piece of a frame, or an extra-info slot. */
  private takeRxSlot(raw: Uint8Array, slot: number): void {
    if (this.rxSkipExtras) {
      this.rxSkipExtras = (raw[1]! & XEN_NETIF_EXTRA_FLAG_MORE) !== 0;
      return;
    }
    const rsp = decodeRxResponse(raw);
    if (rsp.status < 0 || rsp.offset + rsp.status > XEN_PAGE_SIZE) this.rxBad = true;
    else this.rxChunks.push(this.rxBufs[slot]!.page.read(rsp.offset, rsp.status));
    if (rsp.flags & NETRXF_extra_info) this.rxSkipExtras = true;
    if (rsp.flags & NETRXF_more_data) return;
    const chunks = this.rxChunks;
    const bad = this.rxBad;
    this.rxChunks = [];
    this.rxBad = false;
    if (bad) {
      this.stats.rxErrors++;
      return;
    }
    const frame = chunks.length === 1 ? chunks[0]! : concat(chunks);
    this.stats.rxPackets++;
    this.stats.rxBytes += frame.length;
    for (const h of this.handlers) h(frame);
  }

  /** RING_FINAL_CHECK_FOR_RESPONSES on both rings, one sync. */
  private async finalCheck(link: Link): Promise<boolean> {
    if (link.tx.unconsumedResponses() > 0 || link.rx.unconsumedResponses() > 0) return true;
    const [txPage, rxPage] = [this.ringPages[0]!.page, this.ringPages[1]!.page];
    txPage.setU32(RING_RSP_EVENT_OFFSET, (link.tx.rspCons + 1) >>> 0);
    rxPage.setU32(RING_RSP_EVENT_OFFSET, (link.rx.rspCons + 1) >>> 0);
    await Mirrors.of(this.o.hv).sync([txPage, rxPage]);
    if (this.link !== link) return false;
    // RING_PUSH_REQUESTS_AND_CHECK_NOTIFY for the rx requests posted since the last check, on this same barrier.
    if (ringNeedsNotify(link.rxNotifiedProd, link.rx.reqProdPvt, rxPage.u32(RING_REQ_EVENT_OFFSET))) this.notify(link);
    link.rxNotifiedProd = link.rx.reqProdPvt;
    if (link.rx.unconsumedResponses() > 0) {
      this.rxNeedsDataSync = true;
      return true;
    }
    return link.tx.unconsumedResponses() > 0;
  }

  /** @internal for NetfrontRaw */
  get currentLink(): Link {
    if (!this.link?.connected) throw new XenError('ENOTCONN', `${this.dir} is not connected`);
    return this.link;
  }

  /** @internal for NetfrontRaw */
  txBuffer(id: number): OwnPage {
    const p = this.txBufs[id];
    if (!p) throw new XenError('EINVAL', `no tx buffer ${id}`);
    return p;
  }

  /** @internal */
  get ringPage(): { tx: MirrorPage; rx: MirrorPage } {
    return { tx: this.ringPages[0]!.page, rx: this.ringPages[1]!.page };
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Raw access for hostile-frontend tests: write any slot, publish any index.
 * Nothing here is checked; the backend must cope.
 */
export class NetfrontRaw {
  constructor(private readonly nf: Netfront) {}

  /** The grant ref of tx buffer `id` (granted read-only to the backend). */
  txGref(id: number): number {
    return this.nf.currentLink.txRefs[id]!;
  }

  /** Fill tx buffer `id` (a page) with `data` at `offset`. */
  fillTx(id: number, data: Uint8Array, offset = 0): void {
    this.nf.txBuffer(id).page.write(offset, data);
  }

  /** Put any request in the next tx slot (not yet published). */
  queueTx(req: NetifTxRequest): void {
    this.nf.currentLink.tx.queueRequest(encodeTxRequest(req));
  }

  /** Publish req_prod = our private producer and notify (or, with `notify` false, only publish: a lost event). */
  pushTx(notify = true): void {
    const link = this.nf.currentLink;
    if (notify) {
      this.nf.pushTx(link);
      return;
    }
    this.nf.ringPage.tx.setU32(RING_REQ_PROD_OFFSET, link.tx.reqProdPvt);
    this.nf.ringPage.tx.flush();
  }

  /** Publish any tx req_prod (a lie, for tests) and notify. */
  setTxReqProd(prod: number): void {
    const link = this.nf.currentLink;
    this.nf.ringPage.tx.setU32(RING_REQ_PROD_OFFSET, prod >>> 0);
    this.nf.notify(link);
  }

  /** Publish any rx req_prod (a lie, for tests) and notify. */
  setRxReqProd(prod: number): void {
    const link = this.nf.currentLink;
    this.nf.ringPage.rx.setU32(RING_REQ_PROD_OFFSET, prod >>> 0);
    this.nf.notify(link);
  }

  /** Current private rx producer. */
  get rxReqProdPvt(): number {
    return this.nf.currentLink.rx.reqProdPvt;
  }

  /** Current private tx producer. */
  get txReqProdPvt(): number {
    return this.nf.currentLink.tx.reqProdPvt;
  }

  /** Overwrite rx ring slot `slot` with `req` (e.g. a bad gref in a posted request) and notify. */
  rewriteRx(slot: number, req: NetifRxRequest): void {
    const link = this.nf.currentLink;
    this.nf.ringPage.rx.write(RING_HEADER_SIZE + (slot & (RING_SLOTS - 1)) * NETIF_RX_ENTRY_SIZE, encodeRxRequest(req));
    this.nf.notify(link);
  }

  /** The rx slots posted but not yet answered, oldest first (where rewriteRx hurts). */
  postedRxSlots(): number[] {
    const link = this.nf.currentLink;
    const out: number[] = [];
    for (let i = link.rx.rspCons; i !== link.rx.reqProdPvt; i = (i + 1) >>> 0) out.push(i & (RING_SLOTS - 1));
    return out;
  }
}
