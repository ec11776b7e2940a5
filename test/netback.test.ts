/**
 * netback as a real driver domain (started by the supervisor), process-domain
 * frontends (libxen Netfront) with vifs added as xl adds them: bridging,
 * frame sizes, the xenbus handshake's refusals, counters, pcap, rate=.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NETIF_STATS_DIR, XenbusState } from '@xenbox/abi';
import { readXenbusState, waitForXenbusState } from '@xenbox/libxen';
import { listDevices, removeDevice } from '../packages/dom0/dist/libxl/device.js';
import { BROADCAST, Inbox, NetHarness, arpReply, arpRequest, ethFrame, icmpEcho, sleep, type NetGuest } from './netback-harness.js';

let h: NetHarness;
let a: NetGuest, b: NetGuest, c: NetGuest;
let ia: Inbox, ib: Inbox, ic: Inbox;

beforeAll(async () => {
  h = await NetHarness.up('nb', { bridges: ['xenbr0', 'xenbr1'], pcapDir: 'captures' });
  a = await h.guest('net-a');
  b = await h.guest('net-b');
  c = await h.guest('net-c', { bridge: 'xenbr1' });
  ia = new Inbox(a.nf);
  ib = new Inbox(b.nf);
  ic = new Inbox(c.nf);
}, 60_000);

afterAll(async () => {
  await h?.destroy();
});

const same = (x: Uint8Array, y: Uint8Array) => x.length === y.length && Buffer.compare(Buffer.from(x), Buffer.from(y)) === 0;

describe('netback bridges frames between vifs', () => {
  it('delivers an ARP broadcast to the other vif on the bridge, the unicast reply only to the asker, nothing to another bridge', async () => {
    const req = arpRequest(a.mac, [10, 0, 0, 1], [10, 0, 0, 2]);
    await a.nf.send(req);
    const [got] = await ib.until((f) => f.length >= 1, 5000, 'the ARP request at B');
    expect(same(got!, req)).toBe(true);
    const reply = arpReply(got!, b.mac);
    await b.nf.send(reply);
    await ia.until((f) => f.some((x) => same(x, reply)), 5000, 'the ARP reply at A');
    await sleep(300);
    // The reply was unicast to a learned address: B's own vif and the other bridge saw nothing of it.
    expect(ib.frames.filter((x) => same(x, reply))).toHaveLength(0);
    expect(ic.frames).toHaveLength(0);
    expect(ia.frames.filter((x) => same(x, req))).toHaveLength(0); // never sent back to its sender
  });

  it('carries 60, 1514 and (scatter-gather, mtu 9000) 9000-byte frames intact', async () => {
    ib.clear();
    const sizes = [60, 1514];
    for (const [i, n] of sizes.entries()) await a.nf.send(ethFrame(b.mac, a.mac, 0x88b5, n, i));
    const got = await ib.until((f) => f.length >= sizes.length, 5000, 'the sized frames');
    sizes.forEach((n, i) => expect(same(got[i]!, ethFrame(b.mac, a.mac, 0x88b5, n, i))).toBe(true));

    const j1 = await h.guest('net-j1', { mtu: 9000 });
    const j2 = await h.guest('net-j2', { mtu: 9000 });
    const ij2 = new Inbox(j2.nf);
    const jumbo = ethFrame(j2.mac, j1.mac, 0x88b5, 9000, 3);
    // Let the bridge learn both (a frame to oneself is learned, then filtered: nobody else sees it).
    await j1.nf.send(ethFrame(j1.mac, j1.mac, 0x88b5, 60));
    await j2.nf.send(ethFrame(j2.mac, j2.mac, 0x88b5, 60));
    await sleep(200);
    await j1.nf.send(jumbo);
    const [big] = await ij2.until((f) => f.length >= 1, 5000, 'the jumbo frame');
    expect(big!.length).toBe(9000);
    expect(same(big!, jumbo)).toBe(true);
    // The same frame to a vif with the default MTU (1500) is dropped and counted there.
    ib.clear();
    await j1.nf.send(ethFrame(b.mac, j1.mac, 0x88b5, 9000, 4));
    await a.nf.send(ethFrame(b.mac, a.mac, 0x88b5, 100, 5));
    await ib.until((f) => f.length >= 1, 5000);
    await sleep(200);
    expect(ib.frames.map((f) => f.length)).toEqual([100]);
  });

  it('refuses a vif on a bridge this netback does not serve, saying which bridge, as vif-bridge does', async () => {
    const g = await h.guest('net-nobr', { bridge: 'xenbr7', noFrontend: true });
    const be = await h.backendDir(g);
    await waitForXenbusState(h.xs0, be, (s) => s === XenbusState.Closed, { timeoutMs: 5000 });
    expect(await h.xs0.read(`${be}/hotplug-status`)).toBe('error');
    expect(await h.xs0.read(`${be}/hotplug-error`)).toMatch(/Could not find bridge device xenbr7/);
    const nb = await h.netbackDomid();
    const rel = be.replace(/^\/local\/domain\/\d+\//, '');
    expect(await h.xs0.read(`/local/domain/${nb}/error/${rel}/error`)).toMatch(/^ENODEV .*xenbr7/);
  });

  it('refuses a frontend without request-rx-copy (EOPNOTSUPP) or without feature-rx-notify (EINVAL), Closed, like Linux netback', async () => {
    const g = await h.guest('net-flip', { noFrontend: true });
    const be = await h.backendDir(g);
    const fe = `/local/domain/${g.domid}/device/vif/0`;
    await waitForXenbusState(g.xs, be, (s) => s === XenbusState.InitWait, { timeoutMs: 5000 });
    expect(await g.xs.read(`${be}/feature-rx-copy`)).toBe('1');
    expect(await g.xs.read(`${be}/feature-rx-flip`)).toBe('0');
    expect(await g.xs.read(`${be}/hotplug-status`)).toBe('connected');
    await g.xs.write(`${fe}/tx-ring-ref`, '8');
    await g.xs.write(`${fe}/rx-ring-ref`, '9');
    await g.xs.write(`${fe}/event-channel`, '1');
    await g.xs.write(`${fe}/state`, String(XenbusState.Initialised));
    await waitForXenbusState(g.xs, be, (s) => s === XenbusState.Closed, { timeoutMs: 5000 });
    const nb = await h.netbackDomid();
    const rel = be.replace(/^\/local\/domain\/\d+\//, '');
    expect(await h.xs0.read(`/local/domain/${nb}/error/${rel}/error`)).toMatch(/^EOPNOTSUPP .*request-rx-copy/);

    // request-rx-copy but no feature-rx-notify: refused too (mandatory in Linux netback since 2014).
    const g2 = await h.guest('net-nonotify', { noFrontend: true });
    const be2 = await h.backendDir(g2);
    const fe2 = `/local/domain/${g2.domid}/device/vif/0`;
    await waitForXenbusState(g2.xs, be2, (s) => s === XenbusState.InitWait, { timeoutMs: 5000 });
    for (const [k, v] of Object.entries({ 'tx-ring-ref': '8', 'rx-ring-ref': '9', 'event-channel': '1', 'request-rx-copy': '1' })) await g2.xs.write(`${fe2}/${k}`, v);
    await g2.xs.write(`${fe2}/state`, String(XenbusState.Initialised));
    await waitForXenbusState(g2.xs, be2, (s) => s === XenbusState.Closed, { timeoutMs: 5000 });
    const rel2 = be2.replace(/^\/local\/domain\/\d+\//, '');
    expect(await h.xs0.read(`/local/domain/${nb}/error/${rel2}/error`)).toMatch(/^EINVAL .*feature-rx-notify is mandatory/);
  });

  it('publishes per-vif counters under the backend directory', async () => {
    const be = await h.backendDir(a);
    const read = async (n: string) => Number((await h.xs0.tryRead(`${be}/${NETIF_STATS_DIR}/${n}`)) ?? NaN);
    const deadline = Date.now() + 3000;
    while ((await read('tx_packets')) !== a.nf.stats.txPackets && Date.now() < deadline) await sleep(100);
    expect(await read('tx_packets')).toBe(a.nf.stats.txPackets);
    expect(await read('tx_bytes')).toBe(a.nf.stats.txBytes);
    expect(await read('rx_packets')).toBe(a.nf.stats.rxPackets);
    expect(await read('rx_bytes')).toBe(a.nf.stats.rxBytes);
    expect(await read('tx_errors')).toBe(0);
  });

  it('captures a bridge in a pcap file that tshark reads while netback runs: an ICMP echo request then its reply', async () => {
    const ping = icmpEcho({ dst: b.mac, src: a.mac, sip: [10, 0, 0, 1], dip: [10, 0, 0, 2], type: 8, id: 0x77, seq: 1 });
    ib.clear();
    await a.nf.send(ping);
    const [req] = await ib.until((f) => f.length >= 1, 5000);
    const pong = icmpEcho({ dst: a.mac, src: b.mac, sip: [10, 0, 0, 2], dip: [10, 0, 0, 1], type: 0, id: 0x77, seq: 1 });
    expect(req![34]).toBe(8);
    await b.nf.send(pong);
    await ia.until((f) => f.some((x) => same(x, pong)), 5000);
    const file = join(h.runDir, 'captures', 'xenbr0.pcap');
    await sleep(300); // the writer flushes within 100 ms
    expect(existsSync(file) && statSync(file).size > 24).toBe(true);
    const out = await new Promise<string>((res, rej) =>
      execFile('tshark', ['-r', file, '-Y', 'icmp', '-T', 'fields', '-e', 'icmp.type', '-e', 'icmp.checksum.status'], (e, so, se) => (e ? rej(new Error(`${e.message} ${se}`)) : res(so))),
    );
    const lines = out.trim().split('\n').map((l) => l.split('\t'));
    expect(lines.map((l) => l[0])).toEqual(['8', '0']);
    expect(lines.every((l) => l[1] === '1')).toBe(true); // checksums good
  });

  it('a guest reconnects after closing its vif (Closed -> Initialising -> InitWait -> Connected)', async () => {
    const be = await h.backendDir(c);
    const fe = `/local/domain/${c.domid}/device/vif/0`;
    await c.xs.write(`${fe}/state`, String(XenbusState.Closing));
    await waitForXenbusState(c.xs, be, (s) => s === XenbusState.Closing || s === XenbusState.Closed, { timeoutMs: 5000 });
    await c.nf.waitConnected(10_000).catch(() => undefined);
    // Netfront answers the backend's Closing with Closed, then starts over.
    await waitForXenbusState(c.xs, be, (s) => s === XenbusState.Connected, { timeoutMs: 10_000 });
    await c.nf.waitConnected(5000);
    expect(await readXenbusState(c.xs, fe)).toBe(XenbusState.Connected);
    const d = await h.guest('net-d', { bridge: 'xenbr1' });
    const id = new Inbox(d.nf);
    await c.nf.send(ethFrame(BROADCAST, c.mac, 0x88b5, 64));
    await id.until((f) => f.length >= 1, 5000);
  });
});

describe('removal', () => {
  it('a connected vif removed as xl network-detach does (online=0, Closing, wait for Closed) goes in well under the 10 s timeout and leaves the bridge', async () => {
    const g = await h.guest('net-detach');
    const ig = new Inbox(g.nf);
    await a.nf.send(ethFrame(BROADCAST, a.mac, 0x88b5, 64, 9));
    await ig.until((f) => f.length >= 1, 5000);
    const [dev] = await listDevices(h.xs0, g.domid, 'vif');
    const be = dev!.backendPath;
    const t0 = Date.now();
    await removeDevice(h.xs0, dev!, { timeoutMs: 5000 });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await h.xs0.tryRead(`${be}/state`)).toBeUndefined();
    expect(g.nf.connected).toBe(false);
    ig.clear();
    await a.nf.send(ethFrame(BROADCAST, a.mac, 0x88b5, 64, 10));
    await ib.until((f) => f.some((x) => x[20] === ethFrame(BROADCAST, a.mac, 0x88b5, 64, 10)[20]), 5000);
    await sleep(200);
    expect(ig.frames).toHaveLength(0);

    // Forced removal (xl network-detach --force, domain teardown): no handshake, the directories just go.
    const f = await h.guest('net-detach-force');
    const [fdev] = await listDevices(h.xs0, f.domid, 'vif');
    await removeDevice(h.xs0, fdev!, { force: true });
    const deadline = Date.now() + 3000;
    while (f.nf.connected && Date.now() < deadline) await sleep(20);
    expect(f.nf.connected).toBe(false);
  });
});

describe('rate=', () => {
  it('limits a vif to its credit: 300 kB at 100 kB/s takes about 3 s, several times what it takes unlimited', async () => {
    const slow = await h.guest('net-slow', { rate: '10000,100000' }); // 10 kB per 100 ms
    const sink = await h.guest('net-sink');
    const isink = new Inbox(sink.nf);
    await sink.nf.send(ethFrame(BROADCAST, sink.mac, 0x88b5, 60));
    await sleep(200);
    const blast = async (from: NetGuest, n: number) => {
      isink.clear();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await from.nf.send(ethFrame(sink.mac, from.mac, 0x88b5, 1500, i));
      await isink.until((f) => f.length >= n, 20_000, `${n} frames`);
      return performance.now() - t0;
    };
    const fast = await blast(a, 200);
    const limited = await blast(slow, 200); // 300 kB at 100 kB/s: about 3 s
    // 300,000 bytes with 10,000 of credit at the start and 10,000 per 100 ms: at least 2.9 s.
    expect(limited).toBeGreaterThan(2600);
    expect(limited).toBeGreaterThan(fast * 2);
    console.log(`rate=: 300 kB unlimited ${fast.toFixed(0)} ms, at 100 kB/s ${limited.toFixed(0)} ms`);
  }, 30_000);
});
