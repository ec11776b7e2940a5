/**
 * A hostile frontend ("the liar") next to two well-behaved ones: every bad
 * request gets its error response and is counted, netback keeps forwarding
 * between the others, and the toolstack can take the liar's vif away.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeTxRequest,
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETIF_STATS_DIR,
  NETTXF_extra_info,
  NETTXF_more_data,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  XenbusState,
  encodeExtraInfo,
  type NetifTxRequest,
} from '@xenbox/abi';
import { readXenbusState } from '@xenbox/libxen';
import { listDevices, removeDevice } from '../packages/dom0/dist/libxl/device.js';
import { BROADCAST, Inbox, NetHarness, ethFrame, sleep, type NetGuest } from './netback-harness.js';

let h: NetHarness;
let a: NetGuest, b: NetGuest, liar: NetGuest;
let ia: Inbox, ib: Inbox;
let netbackPid: number | null;
let nextId = 1000;

beforeAll(async () => {
  h = await NetHarness.up('nbh', { bridges: ['xenbr0'] });
  a = await h.guest('good-a');
  b = await h.guest('good-b');
  liar = await h.guest('liar');
  ia = new Inbox(a.nf);
  ib = new Inbox(b.nf);
  netbackPid = (await h.stack.service('netback')).pid;
}, 60_000);

afterAll(async () => {
  await h?.destroy();
});

/** A and B still talk: a frame each way arrives. */
async function goodPairWorks(tag: number): Promise<void> {
  ia.clear();
  ib.clear();
  const ab = ethFrame(b.mac, a.mac, 0x88b5, 200, tag);
  const ba = ethFrame(a.mac, b.mac, 0x88b5, 300, tag);
  await a.nf.send(ab);
  await b.nf.send(ba);
  await ib.until((f) => f.some((x) => x.length === 200 && x[20] === ab[20]), 5000, 'A -> B');
  await ia.until((f) => f.some((x) => x.length === 300 && x[20] === ba[20]), 5000, 'B -> A');
}

/**
 * Queue raw tx slots from the liar, publish them, and return the statuses
 * of their responses in ring order (netback answers in the order it consumed).
 */
async function liarSends(slots: Array<Partial<NetifTxRequest> & { raw?: Uint8Array }>): Promise<number[]> {
  const before = liar.nf.txResponses.length;
  for (const s of slots) {
    if (s.raw) {
      // an extra-info slot: its 8 bytes overlay the request
      liar.nf.raw.queueTx(decodeTxRequest(Uint8Array.from([...s.raw, 0, 0, 0, 0])));
    } else {
      liar.nf.raw.queueTx({ gref: s.gref ?? liar.nf.raw.txGref(0), offset: s.offset ?? 0, flags: s.flags ?? 0, id: nextId++, size: s.size ?? 60 });
    }
  }
  liar.nf.raw.pushTx();
  const deadline = Date.now() + 5000;
  while (liar.nf.txResponses.length - before < slots.length) {
    if (Date.now() > deadline) throw new Error(`only ${liar.nf.txResponses.length - before} of ${slots.length} tx responses`);
    await sleep(10);
  }
  return liar.nf.txResponses.slice(before, before + slots.length).map((r) => r.status);
}

/** A published counter of a vif, once it satisfies `ok` (counters reach xenstore once a second). */
async function statOf(g: NetGuest, name: string, ok: (v: number) => boolean = () => true): Promise<number> {
  const path = `${await h.backendDir(g)}/${NETIF_STATS_DIR}/${name}`;
  const deadline = Date.now() + 5000;
  for (;;) {
    const v = Number((await h.xs0.tryRead(path)) ?? NaN);
    if ((!Number.isNaN(v) && ok(v)) || Date.now() > deadline) return v;
    await sleep(100);
  }
}

describe('a hostile frontend', () => {
  it('gets NETIF_RSP_ERROR for size 0, a size past the page, offset+size > 4096 and fragments larger than the packet; A and B are unaffected', async () => {
    liar.nf.raw.fillTx(0, ethFrame(BROADCAST, liar.mac, 0x88b5, 60));
    const r = await liarSends([{ size: 0 }, { size: 65535 }, { offset: 4000, size: 200 }, { size: 14 }]);
    expect(r).toEqual([NETIF_RSP_ERROR, NETIF_RSP_ERROR, NETIF_RSP_ERROR, NETIF_RSP_OKAY]);
    // first slot 100 bytes but the fragment claims 200
    const r2 = await liarSends([{ size: 100, flags: NETTXF_more_data }, { size: 200 }]);
    expect(r2).toEqual([NETIF_RSP_ERROR, NETIF_RSP_ERROR]);
    await goodPairWorks(1);
  });

  it('refuses a more_data chain longer than XEN_NETIF_NR_SLOTS_MIN (18) slot by slot, then accepts the next good packet', async () => {
    const chain = Array.from({ length: 25 }, (_, i) => ({ size: i === 0 ? 25 * 60 : 60, flags: i < 24 ? NETTXF_more_data : 0 }));
    const r = await liarSends([...chain, { size: 60 }]);
    const statuses = r;
    expect(statuses.slice(0, 25).every((s) => s === NETIF_RSP_ERROR)).toBe(true);
    expect(statuses[25]).toBe(NETIF_RSP_OKAY);
    // exactly 18 slots is fine
    const ok = Array.from({ length: 18 }, (_, i) => ({ size: i === 0 ? 18 * 60 : 60, flags: i < 17 ? NETTXF_more_data : 0 }));
    const r3 = await liarSends(ok);
    expect(r3.every((s) => s === NETIF_RSP_OKAY)).toBe(true);
  });

  it('leaves a chain that stops half way unanswered without holding up others, and finishes it when the rest arrives', async () => {
    const before = liar.nf.txResponses.length;
    for (let i = 0; i < 3; i++) liar.nf.raw.queueTx({ gref: liar.nf.raw.txGref(0), offset: 0, flags: NETTXF_more_data, id: nextId++, size: i === 0 ? 240 : 60 });
    liar.nf.raw.pushTx();
    await goodPairWorks(2);
    expect(liar.nf.txResponses.length).toBe(before);
    const r = await liarSends([{ size: 60 }]);
    expect(r).toEqual([NETIF_RSP_OKAY]);
    expect(liar.nf.txResponses.slice(before).map((x) => x.status)).toEqual([NETIF_RSP_OKAY, NETIF_RSP_OKAY, NETIF_RSP_OKAY, NETIF_RSP_OKAY]);
  });

  it('picks up requests published without an event within about a second (the periodic ring check)', async () => {
    await sleep(300); // let netback go idle with req_event armed
    const before = liar.nf.txResponses.length;
    liar.nf.raw.queueTx({ gref: liar.nf.raw.txGref(0), offset: 0, flags: 0, id: nextId++, size: 60 });
    liar.nf.raw.pushTx(false);
    const t0 = Date.now();
    while (liar.nf.txResponses.length === before && Date.now() - t0 < 3000) await sleep(20);
    expect(liar.nf.txResponses.slice(before).map((r) => r.status)).toEqual([NETIF_RSP_OKAY]);
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  it('answers bad grant refs with NETIF_RSP_ERROR', async () => {
    const r = await liarSends([{ gref: 60000, size: 60 }, { gref: 3, size: 60 }]);
    expect(r).toEqual([NETIF_RSP_ERROR, NETIF_RSP_ERROR]);
    expect(await statOf(liar, 'tx_errors', (v) => v >= 7)).toBeGreaterThanOrEqual(7);
  });

  it('answers extra-info slots with NETIF_RSP_NULL: GSO (not offered) refused, a multicast-control dummy accepted', async () => {
    const gso = encodeExtraInfo({ type: XEN_NETIF_EXTRA_TYPE_GSO, flags: 0, data: new Uint8Array(6) });
    const r = await liarSends([{ size: 60, flags: NETTXF_extra_info }, { raw: gso }]);
    expect(r).toEqual([NETIF_RSP_ERROR, NETIF_RSP_NULL]);
    const mc = encodeExtraInfo({ type: XEN_NETIF_EXTRA_TYPE_MCAST_ADD, flags: 0, data: Uint8Array.from([1, 0, 0x5e, 0, 0, 1]) });
    const r2 = await liarSends([{ size: 0, flags: NETTXF_extra_info }, { raw: mc }]);
    expect(r2).toEqual([NETIF_RSP_OKAY, NETIF_RSP_NULL]);
  });

  it('survives rx requests with bad grefs: those frames fail and are counted, later ones arrive', async () => {
    const il = new Inbox(liar.nf);
    const posted = liar.nf.raw.postedRxSlots();
    for (const slot of posted.slice(0, 3)) liar.nf.raw.rewriteRx(slot, { id: slot, gref: 70000 });
    await sleep(50);
    for (let i = 0; i < 5; i++) await a.nf.send(ethFrame(liar.mac, a.mac, 0x88b5, 100, i));
    await il.until((f) => f.length >= 2, 5000, 'the frames that had good buffers');
    await sleep(200);
    expect(il.frames).toHaveLength(2);
    expect(liar.nf.stats.rxErrors).toBe(3);
    expect(await statOf(liar, 'rx_errors', (v) => v >= 3)).toBe(3);
  });

  it('keeps A and B talking while the liar floods 5000 frames, and counts them', async () => {
    await sleep(1100); // the counters of the tests before are published
    const before = await statOf(liar, 'tx_packets');
    const flood = (async () => {
      for (let i = 0; i < 5000; i++) await liar.nf.send(ethFrame(liar.mac, liar.mac, 0x88b5, 60, i)); // to itself: filtered by the bridge
    })();
    for (let i = 0; i < 10; i++) await goodPairWorks(10 + i);
    await flood;
    expect((await statOf(liar, 'tx_packets', (v) => v - before >= 5000)) - before).toBe(5000);
  }, 30_000);

  it('queues at most 256 frames for a frontend that posts no rx requests and counts the rest as rx_dropped', async () => {
    const deaf = await h.guest('deaf', { noFrontend: true });
    const { Netfront } = await import('@xenbox/libxen');
    deaf.nf = await Netfront.connect({ hv: deaf.hv, xs: deaf.xs, domid: deaf.domid, devid: 0, rxBuffers: 0 });
    for (let i = 0; i < 400; i++) await a.nf.send(ethFrame(deaf.nf.mac, a.mac, 0x88b5, 60, i));
    expect(await statOf(deaf, 'rx_dropped', (v) => v >= 400 - 256)).toBe(400 - 256);
    await goodPairWorks(30);
  });

  it('closes the vif of a frontend whose rx req_prod runs far ahead, and the others keep going', async () => {
    const bad = await h.guest('liar-rx');
    bad.nf.raw.setRxReqProd(bad.nf.raw.rxReqProdPvt + 5000);
    await a.nf.send(ethFrame(bad.nf.mac, a.mac, 0x88b5, 64)); // netback looks at the rx ring when a frame is for it
    const nb = await h.netbackDomid();
    const be = await h.backendDir(bad);
    const rel = be.replace(/^\/local\/domain\/\d+\//, '');
    const deadline = Date.now() + 5000;
    let err: string | undefined;
    while (!(err = await h.xs0.tryRead(`/local/domain/${nb}/error/${rel}/error`)) && Date.now() < deadline) await sleep(50);
    expect(err).toMatch(/^EIO .*claims \d+ requests/);
    await goodPairWorks(35);
    await bad.nf.close();
  });

  it('disables the vif of a frontend whose req_prod runs far ahead, says why, and the toolstack removes it cleanly', async () => {
    liar.nf.raw.setTxReqProd(liar.nf.raw.txReqProdPvt + 10_000);
    const nb = await h.netbackDomid();
    const be = await h.backendDir(liar);
    const rel = be.replace(/^\/local\/domain\/\d+\//, '');
    const deadline = Date.now() + 5000;
    let err: string | undefined;
    while (!(err = await h.xs0.tryRead(`/local/domain/${nb}/error/${rel}/error`)) && Date.now() < deadline) await sleep(50);
    expect(err).toMatch(/^EIO .*claims \d+ requests/);
    await goodPairWorks(40);

    const [dev] = await listDevices(h.xs0, liar.domid, 'vif');
    const t0 = Date.now();
    await removeDevice(h.xs0, dev!, { timeoutMs: 5000 }); // not forced: the backend must reach Closed by itself
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await readXenbusState(h.xs0, be)).toBe(XenbusState.Unknown);
    await goodPairWorks(41);
    const s = await h.stack.service('netback');
    expect(s.pid).toBe(netbackPid);
    expect(s.state).toBe('ready');
  });
});
