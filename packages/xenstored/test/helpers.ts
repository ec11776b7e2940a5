/**
 * Test helpers: an xenstored in its own temp run dir, clients for dom0 (Unix
 * socket) and for domUs (ZeroMQ with an INTRODUCE secret), a raw socket for
 * hostile bytes, and Debian's Xen clients run against it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { XSD_SOCKMSG_SIZE, decodeXsHeader, encodeXsMessage, runDirLayout, type XsHeader } from '@xenbox/abi';
import { XenstoreClient, silentLogger } from '@xenbox/libxen';
import { XenstoredServer } from '../dist/server.js';

export interface TestStack {
  runDir: string;
  server: XenstoredServer;
  socketPath: string;
  dom0: XenstoreClient;
  /** Introduce `domid` and connect as it over ZeroMQ. */
  domU(domid: number): Promise<XenstoreClient>;
  close(): Promise<void>;
}

export async function startXenstored(opts: { persistent?: boolean } = {}): Promise<TestStack> {
  // Short path: ipc:// and Unix socket paths must stay under 107 bytes.
  const runDir = mkdtempSync(join(tmpdir(), 'xs-'));
  const server = await XenstoredServer.start({ runDir, log: silentLogger(), persistent: opts.persistent ?? false });
  const socketPath = runDirLayout(runDir).xenstoredSocket;
  const dom0 = await XenstoreClient.connectUnix(socketPath, { timeoutMs: 5000 });
  const clients: XenstoreClient[] = [dom0];
  return {
    runDir,
    server,
    socketPath,
    dom0,
    async domU(domid) {
      const secret = randomBytes(16).toString('hex');
      if (!(await dom0.isDomainIntroduced(domid))) await dom0.introduce(domid, { secret });
      else await dom0.introduce(domid, { secret });
      const c = await XenstoreClient.connectZmq({ runDir }, { domid, secret }, { timeoutMs: 5000 });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await server.close();
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** A raw connection to the Unix socket: send any bytes, read whole messages. */
export class RawSocket {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiters.splice(0).forEach((w) => w());
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    sock.on('error', () => {});
  }

  static open(path: string): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path, () => resolve(new RawSocket(s)));
      s.once('error', reject);
    });
  }

  send(bytes: Buffer): void {
    this.sock.write(bytes);
  }

  request(type: number, payload: Buffer | string, reqId = 7, txId = 0): void {
    this.send(encodeXsMessage(type, reqId, txId, typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload));
  }

  /** The next whole message, or null if the connection closed first. */
  async message(timeoutMs = 2000): Promise<{ hdr: XsHeader; payload: string } | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= XSD_SOCKMSG_SIZE) {
        const hdr = decodeXsHeader(this.buf);
        if (this.buf.length >= XSD_SOCKMSG_SIZE + hdr.len) {
          const payload = this.buf.toString('latin1', XSD_SOCKMSG_SIZE, XSD_SOCKMSG_SIZE + hdr.len);
          this.buf = this.buf.subarray(XSD_SOCKMSG_SIZE + hdr.len);
          return { hdr, payload };
        }
      }
      if (this.closed) return null;
      if (Date.now() > deadline) throw new Error('timed out waiting for a message');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

export const XEN_BIN = '/usr/lib/xen-4.17/bin';
export const haveBinary = (path: string) => existsSync(path);

/** Run one of Debian's Xen clients against the socket (asynchronously: the server runs in this process). */
export function runXenTool(socketPath: string, cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, XENSTORED_PATH: socketPath }, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function expectErrno(p: Promise<unknown>, errno: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    if ((e as { errno?: string }).errno === errno) return;
    throw new Error(`expected ${errno}, got ${(e as Error).message}`);
  }
  throw new Error(`expected ${errno}, but it succeeded`);
}
