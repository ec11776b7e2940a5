/**
 * Process bootstrap for a domain: what every xenbox domain process (xenstored,
 * netback, blkback, stubdom, xenconsoled) does first.
 *
 *   1. read the run dir, domid and token from the environment the supervisor
 *      (or toolstack) started it with, and drop the token from the env;
 *   2. open its log, $RUN_DIR/logs/<name>.log;
 *   3. connect to the hypervisor and authenticate as its domain;
 *   4. on SIGTERM/SIGINT, or when its domain is destroyed, or when the
 *      supervisor that started it goes away: run shutdown hooks in reverse
 *      order, close the connection, flush the log and exit;
 *   5. `ready()` tells the supervisor (over the Node IPC channel) that the
 *      service is serving.
 */
import { readFileSync } from 'node:fs';
import {
  ENV_ARGS,
  ENV_DOMID,
  ENV_NAME,
  ENV_RUN_DIR,
  ENV_TOKEN,
  ENV_XS_SECRET,
  IPC_PATH_MAX,
  isValidDomId,
  runDirLayout,
  type DomId,
  type ProcessNotice,
  type RunDirLayout,
} from '@xenbox/abi';
import type { Logger } from 'pino';
import { createLogger, flushLogger } from './logger.js';
import { HypervisorConnection } from './hypervisor-connection.js';
import { XenstoreClient } from './xenstore-client.js';

export interface DomainProcess {
  name: string;
  runDir: string;
  layout: RunDirLayout;
  domid: DomId;
  log: Logger;
  hv: HypervisorConnection;
  /** Per-service arguments from the stack config (XENBOX_ARGS, JSON). */
  args: Record<string, unknown>;
  /**
   * This domain's xenstore connection (ZeroMQ, authenticated with the secret
   * the toolstack introduced it with; dom0 processes use the Unix socket).
   * Opened on first use and closed on shutdown.
   */
  xenstore(): Promise<XenstoreClient>;
  /** Tell the supervisor this service is up. */
  ready(): void;
  /** Run `fn` on orderly shutdown (last registered runs first). */
  onShutdown(fn: () => unknown): void;
  /** Shut down in order and exit with `code`. */
  shutdown(reason: string, code?: number): Promise<never>;
}

export interface BootstrapOptions {
  /** Default name when XENBOX_NAME is not set. */
  name: string;
}

export class BootstrapError extends Error {}

/** The log of this process once bootstrap opened it, so a fatal error in main() reaches it too. */
let processLog: Logger | null = null;

function requireEnv(key: string): string {
  const v = process.env[key];
  if (!v) throw new BootstrapError(`${key} is not set: this program is a xenbox domain and is started by the supervisor or toolstack (xenbox up)`);
  return v;
}

/** Read what the supervisor passed; the token is removed from the environment so children do not inherit it. */
export function readDomainEnv(defaultName: string): { runDir: string; domid: DomId; token: string; xsSecret: string | null; name: string; args: Record<string, unknown> } {
  const runDir = requireEnv(ENV_RUN_DIR);
  const domidText = requireEnv(ENV_DOMID);
  const domid = Number(domidText);
  if (!isValidDomId(domid)) throw new BootstrapError(`${ENV_DOMID}=${domidText} is not a domain id`);
  const tokenSpec = requireEnv(ENV_TOKEN);
  // "@path" reads the token from a file (dom0's token lives in $RUN_DIR/hypervisor/dom0.token).
  const token = tokenSpec.startsWith('@') ? readFileSync(tokenSpec.slice(1), 'utf8').trim() : tokenSpec;
  delete process.env[ENV_TOKEN];
  const xsSecret = process.env[ENV_XS_SECRET] || null;
  delete process.env[ENV_XS_SECRET];
  const name = process.env[ENV_NAME] || defaultName;
  let args: Record<string, unknown> = {};
  const argsText = process.env[ENV_ARGS];
  if (argsText) {
    try {
      args = JSON.parse(argsText) as Record<string, unknown>;
    } catch (e) {
      throw new BootstrapError(`${ENV_ARGS} is not JSON: ${(e as Error).message}`);
    }
  }
  return { runDir, domid, token, xsSecret, name, args };
}

export function checkIpcPath(path: string): void {
  if (Buffer.byteLength(path) >= IPC_PATH_MAX) {
    throw new BootstrapError(`socket path ${path} is ${Buffer.byteLength(path)} bytes; Unix sockets allow at most ${IPC_PATH_MAX - 1}: use a shorter --run-dir`);
  }
}

function requireXsSecret(secret: string | null): string {
  if (!secret) throw new BootstrapError(`${ENV_XS_SECRET} is not set: the toolstack did not introduce this domain to xenstored`);
  return secret;
}

/** Tell our supervisor something, if we were started with an IPC channel. */
export function notifySupervisor(notice: ProcessNotice): void {
  if (process.send && process.connected) process.send(notice);
}

/**
 * Shutdown plumbing shared by domain processes and the hypervisor: hooks run
 * in reverse order once, whatever triggered the shutdown.
 */
export function installShutdown(log: Logger, finalClose: () => Promise<void>) {
  const hooks: Array<() => unknown> = [];
  let stopping: Promise<never> | null = null;
  const shutdown = (reason: string, code = 0): Promise<never> => {
    stopping ??= (async () => {
      log.info({ reason }, 'shutting down');
      for (const fn of hooks.reverse()) {
        try {
          await fn();
        } catch (e) {
          log.error({ err: e }, 'shutdown hook failed');
        }
      }
      try {
        await finalClose();
      } catch (e) {
        log.error({ err: e }, 'closing failed');
      }
      log.info('stopped');
      flushLogger(log);
      process.exit(code);
    })();
    return stopping;
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // Started by a supervisor that has died: do not linger as an orphan.
  process.on('disconnect', () => void shutdown('supervisor went away'));
  process.on('uncaughtException', (e) => {
    log.fatal({ err: e }, 'uncaught exception');
    notifySupervisor({ type: 'fatal', message: e.message });
    void shutdown('uncaught exception', 1);
  });
  process.on('unhandledRejection', (e) => {
    log.fatal({ err: e }, 'unhandled rejection');
    void shutdown('unhandled rejection', 1);
  });
  return { onShutdown: (fn: () => unknown) => void hooks.push(fn), shutdown };
}

/** Start a domain process: env, log, hypervisor connection, signals. */
export async function bootstrapDomain(opts: BootstrapOptions): Promise<DomainProcess> {
  const env = readDomainEnv(opts.name);
  const layout = runDirLayout(env.runDir);
  checkIpcPath(layout.hypervisorSocket);
  const log = createLogger(env.runDir, env.name, { base: { domid: env.domid } });
  processLog = log;
  let hv: HypervisorConnection;
  try {
    hv = await HypervisorConnection.connect({ runDir: env.runDir, domid: env.domid, token: env.token, log });
  } catch (e) {
    log.fatal({ err: e }, 'cannot register with the hypervisor');
    flushLogger(log);
    throw e;
  }
  log.info({ domid: hv.domid, kind: hv.self.kind }, 'registered with the hypervisor');
  const { onShutdown, shutdown } = installShutdown(log, () => hv.close());
  hv.on('domain.destroyed', (d) => void shutdown(`domain destroyed: ${d.reason}`));
  let xs: Promise<XenstoreClient> | null = null;
  const xenstore = (): Promise<XenstoreClient> => {
    xs ??= (async () => {
      const client =
        hv.domid === 0
          ? await XenstoreClient.connectRunDir(env.runDir)
          : await XenstoreClient.connectZmq({ runDir: env.runDir }, { domid: hv.domid, secret: requireXsSecret(env.xsSecret) });
      onShutdown(() => client.close());
      return client;
    })();
    return xs;
  };
  return {
    name: env.name,
    runDir: env.runDir,
    layout,
    domid: hv.domid,
    log,
    hv,
    args: env.args,
    xenstore,
    ready() {
      log.info('ready');
      notifySupervisor({ type: 'ready', domid: hv.domid });
    },
    onShutdown,
    shutdown,
  };
}

/** Run a process's main, turning a BootstrapError into a one-line message and exit 1. */
export function runMain(main: () => Promise<unknown>): void {
  main().catch((e) => {
    const msg = e instanceof BootstrapError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
    if (processLog) {
      processLog.fatal({ err: e }, `cannot start: ${e instanceof Error ? e.message : String(e)}`);
      flushLogger(processLog);
    }
    process.stderr.write(`${process.argv[1] ?? 'xenbox'}: ${msg}\n`);
    notifySupervisor({ type: 'fatal', message: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  });
}
