/**
 * Two process domains share a page through a grant and pass messages over
 * a ring on it with only libxen's ring helpers and an event channel; then
 * the granter is destroyed under the mapper.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HypervisorConnection } from '@xenbox/libxen';
import { startHypervisor, type LoneHypervisor } from './helpers/hypervisor.js';

const PEER = fileURLToPath(new URL('./fixtures/ring-peer.mjs', import.meta.url));
let hv: LoneHypervisor;
let dom0: HypervisorConnection;
const children: ChildProcess[] = [];

type Msg = Record<string, any>;

function spawnPeer(cfg: Record<string, unknown>): { child: ChildProcess; next: (pred: (m: Msg) => boolean) => Promise<Msg> } {
  const child = fork(PEER, [JSON.stringify({ runDir: hv.runDir, ...cfg })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  const inbox: Msg[] = [];
  const waiters: Array<() => void> = [];
  child.on('message', (m) => {
    inbox.push(m as Msg);
    waiters.splice(0).forEach((w) => w());
  });
  const next = async (pred: (m: Msg) => boolean): Promise<Msg> => {
    for (;;) {
      const i = inbox.findIndex(pred);
      if (i >= 0) return inbox.splice(i, 1)[0]!;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return { child, next };
}

beforeAll(async () => {
  hv = await startHypervisor('ring');
  dom0 = await HypervisorConnection.connect({ runDir: hv.runDir, domid: 0, token: hv.dom0Token });
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await dom0?.close();
  await hv?.stop();
});

describe('a ring on a granted page between two process domains', () => {
  it('passes 10,000 messages with none lost or duplicated, then the granter dies and the mapper sees it cleanly', async () => {
    const f = await dom0.call('domctl.createdomain', { name: 'ring-front', kind: 'service' });
    const b = await dom0.call('domctl.createdomain', { name: 'ring-back', kind: 'service' });
    const front = spawnPeer({ role: 'front', domid: f.domid, token: f.token, peer: b.domid });
    const { ref, port } = await front.next((m) => m.ready);
    const back = spawnPeer({ role: 'back', domid: b.domid, token: b.token, peer: f.domid, ref, port });
    await back.next((m) => m.ready);
    front.child.send({ n: 10_000 });
    const done = await front.next((m) => m.done);
    expect(done).toMatchObject({ acked: 10_000, errors: 0 });

    await dom0.call('domctl.destroydomain', { domid: f.domid });
    const report = await back.next((m) => m.report);
    expect(report).toMatchObject({ accessErrno: 'EFAULT', peerClosed: true, status: 'unbound' });
    expect(report.revoked).toMatch(/destroyed/);
    const info = await dom0.call('domctl.getdomaininfo', { domid: b.domid });
    expect(info.evtchnPorts).toBe(1);
    await dom0.call('domctl.destroydomain', { domid: b.domid });
  }, 60_000);
});
