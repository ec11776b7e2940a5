/**
 * `pnpm bench net`: frames between two frontends through netback.
 *
 * A stack with one netback (`xenbox up`, netback a real driver domain);
 * two process domains A and B, each with a vif on xenbr0 added as xl adds
 * one, each running libxen's Netfront (in this process).  A frame from A to
 * B goes A -> hypervisor (flush + event) -> netback (grant copy in, bridge,
 * grant copy out) -> hypervisor -> B.
 *
 *  - ping-pong: A sends a 64-byte frame, B sends it back from its receive
 *    handler; round-trip time.  Baseline: one raw ZeroMQ round trip to an
 *    echo process (the floor of any exchange between two processes here).
 *  - throughput: A streams 1514-byte frames (a 1472-byte UDP payload) to B
 *    with up to WINDOW frames unanswered; frames/s and MB/s at B.  Baseline:
 *    the same frames pipelined through a raw ZeroMQ echo with the same
 *    window (bytes counted one way).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipcEndpoint, runDirLayout, type DomId } from '@xenbox/abi';
import { HypervisorConnection, Netfront, XenstoreClient } from '@xenbox/libxen';
import { addDevice } from '../../packages/dom0/dist/libxl/device.js';
import { introduceDomain } from '../../packages/dom0/dist/libxl/domain-xenstore.js';
import { median, result, type Benchmark } from './harness.js';
import { echoOnce, echoPipelined, startRawEcho } from './raw-echo.js';

const XENBOX = resolve(fileURLToPath(import.meta.url), '../../../packages/dom0/bin/xenbox.js');
const PINGS = 2000;
const FRAMES = 20_000;
/** Frames A may have ahead of B: the ring size, as a streaming netfront fills its ring. */
const WINDOW = 256;

interface Guest {
  domid: DomId;
  hv: HypervisorConnection;
  xs: XenstoreClient;
  nf: Netfront;
}

function frame(dst: Uint8Array, src: Uint8Array, len: number, seq: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  new DataView(f.buffer).setUint32(14, seq, true);
  return f;
}

async function guest(runDir: string, dom0: HypervisorConnection, xs0: XenstoreClient, netback: DomId, name: string, mac: string): Promise<Guest> {
  const d = await dom0.call('domctl.createdomain', { name, kind: 'service' });
  const secret = await introduceDomain(xs0, d.domid, name);
  const hv = await HypervisorConnection.connect({ runDir, domid: d.domid, token: d.token });
  const xs = await XenstoreClient.connectZmq({ runDir }, { domid: d.domid, secret });
  await addDevice(xs0, {
    kind: 'vif',
    backend: netback,
    frontend: d.domid,
    devid: 0,
    backendKeys: { mac, bridge: 'xenbr0', handle: '0', type: 'vif', script: 'vif-bridge', 'hotplug-status': '' },
    frontendKeys: { handle: '0', mac, mtu: '1500', trusted: '1' },
  });
  const nf = await Netfront.connect({ hv, xs, domid: d.domid, devid: 0, timeoutMs: 20_000 });
  return { domid: d.domid, hv, xs, nf };
}

async function netbackDomid(runDir: string): Promise<DomId> {
  for (let i = 0; i < 100; i++) {
    const out = execFileSync(process.execPath, [XENBOX, 'status', '--json', '--run-dir', runDir], { encoding: 'utf8' });
    const s = (JSON.parse(out) as { services: Array<{ name: string; state: string; domid: number | null }> }).services.find((x) => x.name === 'netback');
    if (s?.state === 'ready' && s.domid !== null) return s.domid;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('netback did not become ready');
}

/** A -> B -> A, `n` times; per-round-trip µs. */
async function pingPong(a: Guest, b: Guest, n: number): Promise<number[]> {
  const offB = b.nf.onFrame((f) => {
    const back = f.slice();
    back.set(f.subarray(6, 12), 0);
    back.set(f.subarray(0, 6), 6);
    void b.nf.send(back);
  });
  let wake: (() => void) | null = null;
  const offA = a.nf.onFrame(() => wake?.());
  const rtts: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const got = new Promise<void>((r) => (wake = r));
      await a.nf.send(frame(b.nf.mac, a.nf.mac, 64, i));
      await got;
      rtts.push((performance.now() - t0) * 1000);
    }
  } finally {
    offA();
    offB();
  }
  return rtts;
}

/** A streams `n` frames of `len` bytes to B with at most `window` not yet seen by B; frames/s at B. */
async function stream(a: Guest, b: Guest, n: number, len: number, window: number): Promise<{ fps: number; lost: number }> {
  let received = 0;
  let wake: (() => void) | null = null;
  const off = b.nf.onFrame(() => {
    received++;
    wake?.();
  });
  const t0 = performance.now();
  let sent = 0;
  try {
    while (received < n) {
      while (sent < n && sent - received < window) await a.nf.send(frame(b.nf.mac, a.nf.mac, len, sent++));
      if (received >= n) break;
      const before = received;
      await Promise.race([new Promise<void>((r) => (wake = r)), new Promise((r) => setTimeout(r, 2000))]);
      if (received === before && sent >= n) break; // lost frames: stop waiting
    }
  } finally {
    off();
  }
  const s = (performance.now() - t0) / 1000;
  return { fps: received / s, lost: n - received };
}

export const benchmark: Benchmark = {
  name: 'net',
  description: 'frontend-to-frontend frames through netback (RTT, throughput) vs raw ZeroMQ',
  async run({ tmpDir, progress }) {
    const runDir = join(tmpDir, 'run');
    const cfg = join(tmpDir, 'stack.json');
    writeFileSync(cfg, JSON.stringify({ services: [{ name: 'netback', kind: 'netback', args: { bridges: ['xenbr0'] } }], autostart: null }));
    execFileSync(process.execPath, [XENBOX, 'up', '--detach', '--run-dir', runDir, '--config', cfg], { stdio: 'ignore' });
    const layout = runDirLayout(runDir);
    const dom0 = await HypervisorConnection.connect({ runDir, domid: 0, token: readFileSync(layout.dom0Token, 'utf8').trim() });
    const xs0 = await XenstoreClient.connectRunDir(runDir);
    const raw = await startRawEcho(ipcEndpoint(join(tmpDir, 'raw-echo.sock')));
    const guests: Guest[] = [];
    try {
      const nb = await netbackDomid(runDir);
      progress('two frontends');
      const a = await guest(runDir, dom0, xs0, nb, 'bench-a', '00:16:3e:00:0a:01');
      const b = await guest(runDir, dom0, xs0, nb, 'bench-b', '00:16:3e:00:0b:01');
      guests.push(a, b);
      // Let the bridge learn both addresses.
      await pingPong(a, b, 20);

      progress(`ping-pong x${PINGS}`);
      const rtt = await pingPong(a, b, PINGS);
      const rawRtt: number[] = [];
      const payload = Buffer.alloc(64, 1);
      for (let i = 0; i < PINGS; i++) {
        const t0 = performance.now();
        await echoOnce(raw.dealer, payload);
        rawRtt.push((performance.now() - t0) * 1000);
      }

      progress(`stream ${FRAMES} x 1514 B, window ${WINDOW}`);
      const s = await stream(a, b, FRAMES, 1514, WINDOW);
      const rawFps = await echoPipelined(raw.dealer, Buffer.alloc(1514, 2), FRAMES, WINDOW);
      const mb = (fps: number) => (fps * 1514) / 1e6;
      return [
        result('ping-pong RTT, 64-byte frames (median)', median(rtt), 'µs', median(rawRtt), null),
        result('throughput, 1514-byte frames', s.fps, 'frames/s', rawFps, null),
        result('throughput, 1514-byte frames', mb(s.fps), 'MB/s', mb(rawFps), null),
        result('frames lost in the stream', s.lost, 'frames', null, '0'),
      ];
    } finally {
      for (const g of guests) {
        await g.nf.close().catch(() => undefined);
        g.xs.close();
        await g.hv.close().catch(() => undefined);
      }
      raw.stop();
      xs0.close();
      await dom0.close().catch(() => undefined);
      execFileSync(process.execPath, [XENBOX, 'down', '--run-dir', runDir], { stdio: 'ignore' });
    }
  },
};
