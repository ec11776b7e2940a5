/**
 * `pnpm bench xenstore`: xenstored's request rate over its Unix socket and
 * over ZeroMQ, each beside a raw echo server on the same transport in the
 * same run (same message sizes, same process hop, no store), plus memory
 * per 100k nodes and DIRECTORY of 10,000 children.
 *
 * xenstored runs as its own process (packages/xenstored/dist/standalone.js)
 * with its journal on, as in the stack.  The echo servers are this file run
 * as a child: `node xenstore.bench.js echo-unix PATH | echo-zmq ENDPOINT`.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Dealer, Router } from 'zeromq';
import { XS, XSD_SOCKMSG_SIZE, decodeXsHeader, encodeXsMessage, ipcEndpoint, runDirLayout } from '@xenbox/abi';
import { XenstoreClient } from '@xenbox/libxen';
import { median, result, type Benchmark, type BenchResult } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const STANDALONE = join(here, '../../packages/xenstored/dist/standalone.js');

/* ---------- echo servers (child mode) ---------- */

/** Echo every whole xsd message straight back: the floor any xenstored can reach on a Unix socket. */
function serveUnixEcho(path: string): void {
  const server = createServer((s) => {
    let buf: Buffer = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      let off = 0;
      while (buf.length - off >= XSD_SOCKMSG_SIZE) {
        const len = buf.readUInt32LE(off + 12);
        if (buf.length - off - XSD_SOCKMSG_SIZE < len) break;
        off += XSD_SOCKMSG_SIZE + len;
      }
      if (off) s.write(buf.subarray(0, off));
      buf = buf.subarray(off);
    });
    s.on('error', () => {});
  });
  server.listen(path, () => process.send?.('ready'));
}

async function serveZmqEcho(endpoint: string): Promise<void> {
  const router = new Router({ linger: 0 });
  await router.bind(endpoint);
  process.send?.('ready');
  for await (const [id, frame] of router) await router.send([id!, frame!]);
}

function startEcho(kind: 'echo-unix' | 'echo-zmq', where: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [kind, where], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', () => resolve(child));
    child.once('exit', (c) => reject(new Error(`${kind} exited with ${c}`)));
  });
}

function startXenstored(runDir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [STANDALONE, '--run-dir', runDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout!.on('data', (d: Buffer) => d.toString().startsWith('ready') && resolve(p));
    p.once('exit', (c) => reject(new Error(`xenstored exited with ${c}`)));
  });
}

/* ---------- raw clients for the baselines ---------- */

/** A request/reply channel carrying whole xsd messages, with nothing else in the way. */
interface RawChannel {
  roundTrip(msg: Buffer): Promise<void>;
  close(): void;
}

async function rawUnix(path: string): Promise<RawChannel> {
  const s: Socket = await new Promise((resolve, reject) => {
    const c = createConnection(path, () => resolve(c));
    c.once('error', reject);
  });
  const waiting: Array<() => void> = [];
  let buf: Buffer = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    let off = 0;
    while (buf.length - off >= XSD_SOCKMSG_SIZE) {
      const len = decodeXsHeader(buf, off).len;
      if (buf.length - off - XSD_SOCKMSG_SIZE < len) break;
      off += XSD_SOCKMSG_SIZE + len;
      waiting.shift()?.();
    }
    buf = buf.subarray(off);
  });
  return {
    roundTrip(msg) {
      return new Promise((r) => {
        waiting.push(r);
        s.write(msg);
      });
    },
    close: () => s.destroy(),
  };
}

async function rawZmq(endpoint: string): Promise<RawChannel> {
  const d = new Dealer({ linger: 0 });
  d.connect(endpoint);
  const waiting: Array<() => void> = [];
  const queue: Buffer[] = [];
  let sending = false;
  void (async () => {
    try {
      for await (const [frame] of d) {
        let off = 0;
        while (off < frame!.length) {
          off += XSD_SOCKMSG_SIZE + decodeXsHeader(frame!, off).len;
          waiting.shift()?.();
        }
      }
    } catch {
      /* closed */
    }
  })();
  // Same batching as the xenstore client: messages queued during a send share a frame.
  const flush = async () => {
    if (sending) return;
    sending = true;
    while (queue.length) {
      const f = queue.length === 1 ? queue[0]! : Buffer.concat(queue);
      queue.length = 0;
      await d.send(f);
    }
    sending = false;
  };
  return {
    roundTrip(msg) {
      return new Promise((r) => {
        waiting.push(r);
        queue.push(msg);
        void flush();
      });
    },
    close: () => d.close(),
  };
}

/* ---------- measurement ---------- */

/** ops/s of `op` run `n` times by each of `clients` workers keeping `window` requests in flight. */
async function rate(n: number, clients: number, window: number, op: (client: number, i: number) => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: window }, async () => {
          while (next < n) await op(c, next++);
        }),
      );
    }),
  );
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return (n * clients) / secs;
}

const msg = (type: number, payload: string) => encodeXsMessage(type, 1, 0, Buffer.from(payload, 'latin1'));

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 500));
}

export const benchmark: Benchmark = {
  name: 'xenstore',
  description: 'xenstored ops/s over the Unix socket and ZeroMQ beside raw echo servers; memory per node; big DIRECTORY',
  async run(ctx) {
    const out: BenchResult[] = [];
    const runDir = join(ctx.tmpDir, 'r');
    const xsd = await startXenstored(runDir);
    const layout = runDirLayout(runDir);
    const echoUnixPath = join(ctx.tmpDir, 'echo.sock');
    const echoZmq = ipcEndpoint(join(ctx.tmpDir, 'echo.zmq'));
    const echoU = await startEcho('echo-unix', echoUnixPath);
    const echoZ = await startEcho('echo-zmq', echoZmq);
    const opened: Array<{ close(): void }> = [];
    try {
      const dom0 = await XenstoreClient.connectUnix(layout.xenstoredSocket);
      opened.push(dom0);
      await dom0.write('/bench/key', 'value-of-a-typical-size');
      for (let i = 0; i < 8; i++) await dom0.write(`/bench/dir/child${i}`, 'x');
      // A process domain on ZeroMQ: introduced by dom0 with its secret.
      const secret = randomBytes(16).toString('hex');
      await dom0.mkdir('/local/domain/1');
      await dom0.setPerms('/local/domain/1', [{ perm: 'b', id: 1 }]);
      await dom0.setPerms('/bench', [{ perm: 'b', id: 1 }]);
      await dom0.setPerms('/bench/key', [{ perm: 'b', id: 1 }]);
      await dom0.setPerms('/bench/dir', [{ perm: 'b', id: 1 }]);
      await dom0.introduce(1, { secret });

      const unixClients = [dom0];
      for (let i = 1; i < 8; i++) {
        const c = await XenstoreClient.connectUnix(layout.xenstoredSocket);
        opened.push(c);
        unixClients.push(c);
      }
      const zmqClients: XenstoreClient[] = [];
      for (let i = 0; i < 8; i++) {
        const c = await XenstoreClient.connectZmq({ runDir }, { domid: 1, secret });
        opened.push(c);
        zmqClients.push(c);
      }
      const rawU = await Promise.all(Array.from({ length: 8 }, () => rawUnix(echoUnixPath)));
      const rawZ = await Promise.all(Array.from({ length: 8 }, () => rawZmq(echoZmq)));
      opened.push(...rawU, ...rawZ);

      const ops = {
        read: { raw: msg(XS.READ, '/bench/key\0'), run: (c: XenstoreClient) => c.read('/bench/key') },
        write: { raw: msg(XS.WRITE, '/bench/key\0value-of-a-typical-size'), run: (c: XenstoreClient) => c.write('/bench/key', 'value-of-a-typical-size') },
        directory: { raw: msg(XS.DIRECTORY, '/bench/dir\0'), run: (c: XenstoreClient) => c.directory('/bench/dir') },
      };
      const SEQ = 2000;
      const PIPE = 2000;
      // The machine is shared and the JIT warms up: warm both sides, then
      // alternate xenstored and echo rounds and keep each one's median.
      const paired = async (xsRound: () => Promise<number>, rawRound: () => Promise<number>) => {
        await xsRound();
        await rawRound();
        const a: number[] = [];
        const b: number[] = [];
        for (let k = 0; k < 3; k++) {
          a.push(await xsRound());
          b.push(await rawRound());
        }
        return [median(a), median(b)] as const;
      };
      for (const [transport, clients, raws] of [
        ['unix', unixClients, rawU],
        ['zmq', zmqClients, rawZ],
      ] as const) {
        for (const [name, op] of Object.entries(ops)) {
          ctx.progress(`${transport} ${name}`);
          const [seq, seqRaw] = await paired(
            () => rate(SEQ, 1, 1, () => op.run(clients[0]!)),
            () => rate(SEQ, 1, 1, () => raws[0]!.roundTrip(op.raw)),
          );
          out.push(result(`${transport} ${name}, 1 client sequential`, seq, 'ops/s', seqRaw, name === 'read' ? '>= 0.7x raw echo' : null));
          const [pipe, pipeRaw] = await paired(
            () => rate(PIPE, 8, 16, (c) => op.run(clients[c]!)),
            () => rate(PIPE, 8, 16, (c) => raws[c]!.roundTrip(op.raw)),
          );
          out.push(result(`${transport} ${name}, 8 clients x16 in flight`, pipe, 'ops/s', pipeRaw, null));
        }
      }

      ctx.progress('DIRECTORY of 10,000 children');
      await rate(10_000, 1, 64, (_c, i) => dom0.write(`/big/c${i}`, ''));
      const dirTimes: number[] = [];
      await dom0.directory('/big');
      for (let k = 0; k < 5; k++) {
        const t0 = process.hrtime.bigint();
        const names = await dom0.directory('/big');
        dirTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (names.length !== 10_000) throw new Error(`DIRECTORY returned ${names.length} names`);
      }
      out.push(result('DIRECTORY of 10,000 children (DIRECTORY_PART x15)', median(dirTimes), 'ms', null, '< 50 ms'));

      ctx.progress('memory per 100k nodes');
      await dom0.rm('/big');
      await settle();
      const before = rssBytes(xsd.pid!);
      // 100 directories of 1000 nodes, names and values like a guest's device entries.
      await rate(100_000, 1, 128, (_c, i) => dom0.write(`/local/domain/${Math.floor(i / 1000) + 10}/device/vif/${i % 1000}/state`, '4'));
      await settle();
      const grown = rssBytes(xsd.pid!) - before;
      out.push(result('xenstored RSS growth per 100k nodes', grown / 2 ** 20, 'MiB', null, '1M nodes < 1 GiB (< 102 MiB per 100k)'));
      return out;
    } finally {
      for (const o of opened) o.close();
      for (const p of [xsd, echoU, echoZ]) p.kill('SIGKILL');
    }
  },
};

const self = fileURLToPath(import.meta.url);
if (process.argv[1] === self && process.argv[2] === 'echo-unix') serveUnixEcho(process.argv[3]!);
if (process.argv[1] === self && process.argv[2] === 'echo-zmq') void serveZmqEcho(process.argv[3]!);
