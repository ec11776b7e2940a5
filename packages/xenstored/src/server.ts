/**
 * A running xenstored: the core, its persistent state under
 * $RUN_DIR/xenstored/, the Unix socket and the ZeroMQ socket.  main.ts runs
 * it as a domain of the stack; tests and benchmarks start it directly.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipcEndpoint, runDirLayout } from '@xenbox/abi';
import type { HypervisorConnection, Logger } from '@xenbox/libxen';
import { Persistence } from './persistence.js';
import { RingListener } from './ring-listener.js';
import { UnixSocketListener } from './unix-socket.js';
import { Xenstored } from './xenstored.js';
import { ZmqListener } from './zmq-socket.js';

export interface XenstoredServerOptions {
  runDir: string;
  log: Logger;
  /** Keep state on disk (default true); false for throwaway stores in tests. */
  persistent?: boolean;
  /** Also serve ZeroMQ (default true). */
  zmq?: boolean;
  /** xenstored's hypervisor connection (as a domain of a stack): guests' rings and VIRQ_DOM_EXC. */
  hv?: HypervisorConnection;
}

/** Where dom0's ZeroMQ secret lives (mode 0600 in the 0700 run dir). */
export const dom0SecretPath = (runDir: string) => join(runDirLayout(runDir).xenstoredDir, 'dom0.secret');

export class XenstoredServer {
  readonly xs: Xenstored;
  private persistence: Persistence | null = null;
  private unix: UnixSocketListener | null = null;
  private zmq: ZmqListener | null = null;
  rings: RingListener | null = null;

  private constructor(readonly opts: XenstoredServerOptions) {
    this.xs = new Xenstored(opts.log);
  }

  static async start(opts: XenstoredServerOptions): Promise<XenstoredServer> {
    const s = new XenstoredServer(opts);
    await s.startServing();
    return s;
  }

  get socketPath(): string {
    return runDirLayout(this.opts.runDir).xenstoredSocket;
  }

  private async startServing(): Promise<void> {
    const layout = runDirLayout(this.opts.runDir);
    mkdirSync(layout.xenstoredDir, { recursive: true, mode: 0o700 });
    if (this.opts.persistent !== false) {
      this.persistence = new Persistence(this.xs, layout.xenstoredDir);
      const { restored, replayed } = this.persistence.open();
      this.opts.log.info({ restored, replayed, nodes: this.xs.store.size, domains: this.xs.domains.all().length }, restored ? 'state restored' : 'fresh store');
      const p = this.persistence;
      // Journal every change before any reply or event about it can leave (persistence.ts).
      this.xs.beforeSend = () => p.flush();
    }
    this.unix = new UnixSocketListener(this.xs, layout.xenstoredSocket);
    await this.unix.listen();
    if (this.opts.zmq !== false) {
      this.zmq = new ZmqListener(this.xs, ipcEndpoint(layout.xenstoredZmqSocket), dom0Secret(this.opts.runDir));
      await this.zmq.listen();
    }
    if (this.opts.hv) {
      this.rings = new RingListener(this.xs, this.opts.hv, this.opts.log);
      await this.rings.start();
    }
  }

  async close(): Promise<void> {
    await this.rings?.close();
    await this.unix?.close();
    await this.zmq?.close();
    this.persistence?.close();
  }
}

function dom0Secret(runDir: string): string {
  const path = dom0SecretPath(runDir);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const secret = randomBytes(32).toString('hex');
  writeFileSync(path, secret, { mode: 0o600 });
  return secret;
}
