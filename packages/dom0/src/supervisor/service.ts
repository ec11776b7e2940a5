/**
 * One supervised process: how to start it, its current incarnation, its
 * state and restart history.  The supervisor decides *when* to start, stop
 * or restart; this file knows *how*.
 *
 * Children are forked with an IPC channel (readiness notices arrive there;
 * if the supervisor dies the channel closes and the child shuts itself down)
 * and in their own process group, so a Ctrl-C at the terminal reaches only
 * the supervisor, which then stops everything in order.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceNotice, DomId, ProcessNotice, RestartPolicy, ServiceState, ServiceStatus } from '@xenbox/abi';
import { MALLOC_TUNING_ENV } from '@xenbox/libxen';
import type { SavedBackendDevice } from '../libxl/device-rebind.js';
import { RestartTracker } from './restart-metrics.js';

export interface ServiceSpec {
  name: string;
  /** The program: hypervisor, xenstored, xenconsoled, netback, blkback, stubdom. */
  kind: string;
  /** Absolute path of the compiled entry point. */
  module: string;
  argv: string[];
  /** Extra environment (domid, token, args are added per incarnation). */
  env: Record<string, string>;
  restart: RestartPolicy;
  /** Whether each incarnation is a new domain in the hypervisor (service domains) or runs as dom0/hypervisor. */
  ownDomain: boolean;
  /** Order of stopping: lower stops later (hypervisor 0, xenstored 1, dom0 services 2, driver domains 3). */
  tier: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function describeExit(e: ExitInfo): string {
  return e.signal ? `killed by ${e.signal}` : `exited with status ${e.code}`;
}

export class Service {
  state: ServiceState = 'stopped';
  child: ChildProcess | null = null;
  domid: DomId | null = null;
  /**
   * A driver domain's devices, saved when its domain died, given to the next
   * incarnation (libxl/device-rebind.ts); `from` is the dead domid.
   */
  orphanedDevices: { from: DomId; devices: SavedBackendDevice[] } | null = null;
  /** The devices the incarnation being started took over (deviceName form), for its restart record. */
  movedDevices: string[] = [];
  startedAt: number | null = null;
  restarts = 0;
  lastExit: string | null = null;
  /** When recent restarts happened (ms), for crash-loop detection. */
  restartTimes: number[] = [];
  /** Set while the supervisor is deliberately stopping this incarnation. */
  stopping = false;
  /** When a death began: a requested kill, or the exit being noticed. Cleared once ready again. */
  downSince: number | null = null;
  /** Set by `xenbox kill`: fault injection, which does not count as a crash loop. */
  killRequested = false;
  /** How long a requested kill keeps it down before the restart (ms). */
  holdMs = 0;
  readonly recoveryMs: number[] = [];
  /** Per-restart costs to the guests (restart-metrics.ts); blkfronts re-issue, netfronts do not. */
  readonly restartMetrics: RestartTracker;
  /** Where a backend's device notices go (the supervisor logs them). */
  onDeviceNotice: ((n: DeviceNotice) => void) | null = null;

  constructor(readonly spec: ServiceSpec) {
    this.restartMetrics = new RestartTracker(spec.kind === 'blkback');
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  status(): ServiceStatus {
    return {
      name: this.name,
      kind: this.spec.kind,
      domid: this.domid,
      pid: this.pid,
      state: this.state,
      startedAt: this.startedAt,
      restarts: this.restarts,
      lastExit: this.lastExit,
      recoveryMs: [...this.recoveryMs],
      restartMetrics: this.restartMetrics.records.map((r) => ({ ...r })),
    };
  }

  /**
   * Start one incarnation.  Resolves when it reports ready; rejects if it
   * exits first or says nothing within `readyTimeoutMs`.  `onExit` is told
   * whenever this incarnation ends, whether or not it became ready.
   */
  spawn(logDir: string, extraEnv: Record<string, string>, readyTimeoutMs: number, onExit: (e: ExitInfo, child: ChildProcess) => void): Promise<void> {
    // Anything a child writes to stdout/stderr (a crash before its logger is up) lands here.
    const outFd = openSync(join(logDir, `${this.name}.out`), 'a', 0o600);
    const child = fork(this.spec.module, this.spec.argv, {
      env: { ...process.env, ...MALLOC_TUNING_ENV, ...this.spec.env, ...extraEnv },
      stdio: ['ignore', outFd, outFd, 'ipc'],
      detached: true,
      serialization: 'json',
    });
    closeSync(outFd);
    this.child = child;
    this.state = 'starting';
    this.startedAt = Date.now();
    this.stopping = false;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new Error(`${this.name} did not report ready within ${readyTimeoutMs} ms`));
        child.kill('SIGKILL');
      }, readyTimeoutMs);
      child.on('message', (m: ProcessNotice) => {
        if (m?.type === 'ready' && !settled) {
          settled = true;
          clearTimeout(timer);
          resolve();
        } else if (m?.type === 'fatal') {
          this.lastExit = m.message;
        } else if ((m?.type === 'device-connected' || m?.type === 'device-first-io') && child === this.child) {
          this.onDeviceNotice?.(m);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!settled) {
          settled = true;
          reject(new Error(`${this.name} ${describeExit({ code, signal })} before it was ready${this.lastExit ? `: ${this.lastExit}` : ''}`));
        }
        onExit({ code, signal }, child);
      });
    });
  }

  /** Ask the current incarnation to stop (SIGTERM), SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    this.stopping = true;
    this.state = 'stopping';
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
