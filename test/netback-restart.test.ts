/**
 * netback killed with SIGKILL: the supervisor starts a new incarnation (a new
 * domain), the supervisor moves the vifs to it (dom0 libxl/device-rebind.ts:
 * new backend directories, frontends re-pointed and reset to Initialising,
 * the frontend directories readable by the new backend), and the frontends
 * walk the handshake again with it and exchange frames.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inbox, NetHarness, ethFrame, type NetGuest } from './netback-harness.js';

let h: NetHarness;
let a: NetGuest, b: NetGuest;
let ia: Inbox, ib: Inbox;

beforeAll(async () => {
  h = await NetHarness.up('nbr', { bridges: ['xenbr0'] });
  a = await h.guest('rs-a');
  b = await h.guest('rs-b');
  ia = new Inbox(a.nf);
  ib = new Inbox(b.nf);
}, 60_000);

afterAll(async () => {
  await h?.destroy();
});

/** Wait until a frontend is connected to backend domain `domid`. */
async function connectedTo(g: NetGuest, domid: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(g.nf.connected && g.nf.backendId === domid)) {
    if (Date.now() > deadline) {
      const fe = `/local/domain/${g.domid}/device/vif/${g.devid}`;
      const be = await h.xs0.tryRead(`${fe}/backend`);
      const info = { be, feState: await h.xs0.tryRead(`${fe}/state`), beState: be && (await h.xs0.tryRead(`${be}/state`)), beId: await h.xs0.tryRead(`${fe}/backend-id`) };
      throw new Error(`${g.name} did not reconnect to d${domid} (backend ${g.nf.backendId}, connected ${g.nf.connected}) ${JSON.stringify(info)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function exchange(tag: number): Promise<void> {
  ia.clear();
  ib.clear();
  await a.nf.send(ethFrame(b.mac, a.mac, 0x88b5, 128, tag));
  await b.nf.send(ethFrame(a.mac, b.mac, 0x88b5, 256, tag));
  await ib.until((f) => f.some((x) => x.length === 128), 10_000, 'A -> B');
  await ia.until((f) => f.some((x) => x.length === 256), 10_000, 'B -> A');
}

describe('netback restart', () => {
  it('after kill -9 and a restart as a new domain, the two frontends reconnect to it and exchange frames again', async () => {
    await exchange(1);
    const old = await h.netbackDomid(true);
    expect((await h.stack.run('kill', 'netback')).code).toBe(0);
    const s = await h.stack.waitFor('netback', (x) => x.state === 'ready' && x.domid !== null && x.domid !== old, 15_000);
    const t0 = Date.now();
    await connectedTo(a, s.domid!);
    await connectedTo(b, s.domid!);
    console.log(`frontends reconnected ${Date.now() - t0} ms after the new netback was ready`);
    expect(await h.backendDir(a)).toBe(`/local/domain/${s.domid}/backend/vif/${a.domid}/0`);
    await exchange(2);
    expect(a.nf.stats.reconnects).toBe(1);
  }, 40_000);

  it('a second kill works the same way', async () => {
    const old = await h.netbackDomid(true);
    expect((await h.stack.run('kill', 'netback')).code).toBe(0);
    const s = await h.stack.waitFor('netback', (x) => x.state === 'ready' && x.domid !== null && x.domid !== old, 15_000);
    await connectedTo(a, s.domid!);
    await connectedTo(b, s.domid!);
    await exchange(3);
  }, 40_000);
});
