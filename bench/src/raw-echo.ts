/**
 * The baseline every transport figure is compared with: a bare ZeroMQ
 * ROUTER in its own process that sends each frame straight back, and a
 * bare DEALER to drive it.  No encoding, no dispatch — only ZeroMQ and the
 * process hop.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Dealer, Router } from 'zeromq';

/** Run as a child: `node raw-echo.js serve ENDPOINT`. */
async function serve(endpoint: string): Promise<void> {
  const router = new Router({ linger: 0 });
  await router.bind(endpoint);
  process.send?.('ready');
  process.on('SIGTERM', () => {
    router.close();
    process.exit(0);
  });
  for await (const [id, frame] of router) await router.send([id!, frame!]);
}

export interface RawEcho {
  child: ChildProcess;
  dealer: Dealer;
  stop(): void;
}

export async function startRawEcho(endpoint: string): Promise<RawEcho> {
  const child = fork(fileURLToPath(import.meta.url), ['serve', endpoint], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((res, rej) => {
    child.once('message', () => res());
    child.once('exit', (c) => rej(new Error(`raw echo server exited ${c}`)));
  });
  const dealer = new Dealer({ linger: 0 });
  dealer.connect(endpoint);
  return {
    child,
    dealer,
    stop() {
      dealer.close();
      child.kill('SIGTERM');
    },
  };
}

/** One awaited round trip. */
export async function echoOnce(d: Dealer, payload: Buffer): Promise<void> {
  await d.send(payload);
  await d.receive();
}

/** `total` round trips with `window` frames in flight; returns frames/s. */
export async function echoPipelined(d: Dealer, payload: Buffer, total: number, window: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  let sent = 0;
  let received = 0;
  const receiver = (async () => {
    while (received < total) {
      await d.receive();
      received++;
    }
  })();
  while (sent < total) {
    if (sent - received < window) {
      await d.send(payload);
      sent++;
    } else {
      await new Promise((r) => setImmediate(r));
    }
  }
  await receiver;
  return total / (Number(process.hrtime.bigint() - t0) / 1e9);
}

if (process.argv[2] === 'serve') void serve(process.argv[3]!);
