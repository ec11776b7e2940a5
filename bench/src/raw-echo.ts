/**
 * The baseline every transport figure is compared with: a bare ZeroMQ
 * ROUTER in its own process that sends each frame straight back, and a
 * bare DEALER to drive it.  No encoding, no dispatch — only ZeroMQ and the
 * process hop.
 *
 * Besides echo (one part, sent straight back), the server answers a fetch
 * (two parts: a u32 LE reply size, then the request) with that many bytes,
 * so a transfer that moves data one way can be compared with the same
 * bytes moved one way (fetchOnce).  It also relays (startRawRelay): the
 * four-hop topology of an event between two domains through a broker.
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
  const replies = new Map<number, Buffer>(); // the server has its bytes ready: flatters the baseline, if anything
  for await (const [id, ...parts] of router) {
    if (parts.length === 2 && parts[0]!.length === 4) {
      const size = parts[0]!.readUInt32LE(0);
      let reply = replies.get(size);
      if (!reply) replies.set(size, (reply = Buffer.alloc(size, 7)));
      await router.send([id!, reply]);
    } else {
      await router.send([id!, ...parts]);
    }
  }
}

/**
 * Run as a child: `node raw-echo.js relay ENDPOINT`: a broker.  A frame
 * [to, payload] from peer X goes out as [X, payload] to peer `to` (a
 * DEALER identity), as the hypervisor forwards an event — with no encoding.
 */
async function relay(endpoint: string): Promise<void> {
  const router = new Router({ linger: 0 });
  await router.bind(endpoint);
  process.send?.('ready');
  process.on('SIGTERM', () => {
    router.close();
    process.exit(0);
  });
  for await (const [from, to, payload] of router) await router.send([to!, from!, payload!]);
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

/** One awaited fetch: send `request`, get `replyBytes` bytes back. */
export async function fetchOnce(d: Dealer, request: Buffer, replyBytes: number): Promise<void> {
  const size = Buffer.alloc(4);
  size.writeUInt32LE(replyBytes, 0);
  await d.send([size, request]);
  const [reply] = await d.receive();
  if (reply!.length !== replyBytes) throw new Error(`fetch: got ${reply!.length} bytes, wanted ${replyBytes}`);
}

/**
 * `total` fetches with up to `window` in flight on one DEALER (the server
 * answers in order): the raw counterpart of a client keeping several calls
 * outstanding, as a backend does with its queue depth.
 */
export async function fetchWindowed(d: Dealer, request: Buffer, replyBytes: number, total: number, window: number): Promise<void> {
  const size = Buffer.alloc(4);
  size.writeUInt32LE(replyBytes, 0);
  let received = 0;
  const receiver = (async () => {
    for (; received < total; received++) {
      const [reply] = await d.receive();
      if (reply!.length !== replyBytes) throw new Error(`fetch: got ${reply!.length} bytes, wanted ${replyBytes}`);
    }
  })();
  for (let sent = 0; sent < total; ) {
    if (sent - received < window) {
      await d.send([size, request]);
      sent++;
    } else {
      await new Promise((r) => setImmediate(r));
    }
  }
  await receiver;
}

export interface RawRelay {
  children: ChildProcess[];
  /** A DEALER (identity "a") connected to the relay; frames [to, payload]. */
  a: Dealer;
  stop(): void;
}

function forkReady(args: string[]): Promise<ChildProcess> {
  const child = fork(fileURLToPath(import.meta.url), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise<ChildProcess>((res, rej) => {
    child.once('message', () => res(child));
    child.once('exit', (c) => rej(new Error(`raw ${args[0]} exited ${c}`)));
  });
}

/**
 * A broker process and an echoing peer process ("b") behind it: a frame
 * a -> relay -> b -> relay -> a is the four hops of an event-channel
 * ping-pong through the hypervisor, with nothing but ZeroMQ in them.
 */
export async function startRawRelay(endpoint: string): Promise<RawRelay> {
  const relayProc = await forkReady(['relay', endpoint]);
  const peerProc = await forkReady(['peer', endpoint]);
  const a = new Dealer({ linger: 0, routingId: 'a' });
  a.connect(endpoint);
  return {
    children: [relayProc, peerProc],
    a,
    stop() {
      a.close();
      relayProc.kill('SIGTERM');
      peerProc.kill('SIGTERM');
    },
  };
}

/** One round trip through the relay: a -> b -> a. */
export async function relayOnce(a: Dealer, to: Buffer, payload: Buffer): Promise<void> {
  await a.send([to, payload]);
  await a.receive();
}

/** Run as a child: `node raw-echo.js peer ENDPOINT`: DEALER "b" sending every frame back to whoever relayed it. */
async function peer(endpoint: string): Promise<void> {
  const b = new Dealer({ linger: 0, routingId: 'b' });
  b.connect(endpoint);
  process.on('SIGTERM', () => {
    b.close();
    process.exit(0);
  });
  // Make sure the relay knows "b" before the parent starts sending to it.
  await b.send([Buffer.from('b'), Buffer.from('hello')]);
  await b.receive();
  process.send?.('ready');
  for await (const [from, payload] of b) await b.send([from!, payload!]);
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
else if (process.argv[2] === 'relay') void relay(process.argv[3]!);
else if (process.argv[2] === 'peer') void peer(process.argv[3]!);
