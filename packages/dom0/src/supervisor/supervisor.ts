/**
 * The stack supervisor behind `xenbox up` (DESIGN §11).
 *
 * Boot order: hypervisor; then, as dom0, xenstored, xenconsoled and the
 * driver domains of the stack config — each service domain a fresh domain
 * in the hypervisor whose token only its process receives.  Every process is
 * watched: one that dies is reported at once, its domain destroyed, and it
 * is restarted per policy with backoff; a crash loop is given up on.
 * `down` stops everything in the reverse order: driver domains, dom0
 * services, xenstored, the hypervisor.
 */
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ENV_ARGS,
  ENV_DOMID,
  ENV_NAME,
  ENV_RUN_DIR,
  ENV_TOKEN,
  ENV_XS_SECRET,
  RECOVERY_HISTORY,
  deviceName,
  type DeviceNotice,
  XenError,
  argObject,
  argString,
  argOptInt,
  ipcEndpoint,
  runDirLayout,
  type RunDirLayout,
  type ServiceState,
  type ServiceStatus,
  type SupervisorCalls,
  type DomId,
} from '@xenbox/abi';
import { HypervisorConnection, RpcServer, XenstoreClient, checkIpcPath, type Logger } from '@xenbox/libxen';
import { createGuest } from '../libxl/domain-create.js';
import { introduceDomain, releaseDomain, writeDom0Nodes } from '../libxl/domain-xenstore.js';
import { reconnectStoreRings } from '../libxl/domain-rings.js';
import { spawnMonitor } from '../xl/create.js';
import { loadDomainConfig } from '../xlcfg/domain-config.js';
import { ENV_SUPERVISED, acquireRunDir, leftoverProcesses, removeRuntimeFiles, type Recovery } from './run-dir.js';
import { describeExit, Service, type ExitInfo, type ServiceSpec } from './service.js';
import type { StackConfig } from './stack-config.js';
import { coreServiceSpecs, driverServiceSpec } from './programs.js';
import { rebindDevices, snapshotBackendDevices } from '../libxl/device-rebind.js';

/** Services whose domains serve guests' devices: their devices move to the next incarnation. */
const DRIVER_KINDS = new Set(['blkback', 'netback']);

/** How long a xenstore step of starting or releasing a domain may take. */
const XENSTORE_TIMEOUT_MS = 5_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((res, rej) => {
    const t = setTimeout(() => rej(new XenError('ETIMEDOUT', `${what}: no answer in ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), res(v)),
      (e) => (clearTimeout(t), rej(e)),
    );
  });
}

/** Delay before the n-th restart within the crash-loop window: the first is immediate. */
export const RESTART_BACKOFF_MS = [0, 200, 500, 1000, 2000, 5000];

export interface SupervisorOptions {
  runDir: string;
  config: StackConfig;
  log: Logger;
  readyTimeoutMs?: number;
  stopGraceMs?: number;
}

export interface ChangeEvent {
  service: ServiceStatus;
  message: string;
}

export class Supervisor extends EventEmitter<{ change: [ChangeEvent]; guest: [string]; stopped: [number] }> {
  readonly runDir: string;
  readonly layout: RunDirLayout;
  readonly services: Service[] = [];
  private dom0: HypervisorConnection | null = null;
  /** dom0's xenstore connection (the Unix socket), once xenstored is up. */
  private xs: XenstoreClient | null = null;
  private control: RpcServer | null = null;
  private shuttingDown: Promise<void> | null = null;
  private readonly exits = new Map<Service, Promise<void>>();
  private readonly log: Logger;
  private readonly readyTimeoutMs: number;
  private readonly stopGraceMs: number;
  recovery: Recovery | null = null;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    this.runDir = resolve(opts.runDir);
    this.layout = runDirLayout(this.runDir);
    this.log = opts.log;
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 15_000;
    this.stopGraceMs = opts.stopGraceMs ?? 3_000;
  }

  /** Bring the stack up; resolves once every service is ready (or has been given up on). */
  async up(): Promise<void> {
    checkIpcPath(this.layout.hypervisorSocket);
    checkIpcPath(this.layout.xenstoredSocket);
    this.recovery = acquireRunDir(this.runDir);
    if (this.recovery.stalePid !== null || this.recovery.killed.length) {
      this.log.warn(this.recovery, 'recovered a run dir left by a supervisor that died');
    }
    await this.bindControl();
    const [hypervisor, ...core] = coreServiceSpecs(this.runDir, this.opts.config);
    const hyp = this.add(hypervisor!);
    await this.startAndSettle(hyp);
    if (hyp.state !== 'ready') throw new XenError('EIO', `the hypervisor did not start: ${hyp.lastExit ?? 'unknown reason'}; see ${this.layout.logFile('hypervisor')}`);
    const token = readFileSync(this.layout.dom0Token, 'utf8').trim();
    this.dom0 = await HypervisorConnection.connect({ runDir: this.runDir, domid: 0, token, log: this.log });
    for (const spec of [...core, ...this.opts.config.services.map((s) => driverServiceSpec(s))]) {
      const s = this.add(spec);
      await this.startAndSettle(s);
      if (spec.kind === 'xenstored' && s.state === 'ready') await this.connectXenstore();
    }
    this.writeState();
    await this.autostartGuests();
  }

  /**
   * Create every guest whose xl.cfg is in the autostart directory (as the
   * xendomains init script does with /etc/xen/auto), each with its monitor.
   * A guest that cannot be built is reported; the stack stays up.
   */
  private async autostartGuests(): Promise<void> {
    const dir = this.opts.config.autostart;
    if (!dir || !existsSync(dir) || !this.dom0) return;
    const deps = { hv: this.dom0, xs: this.xs };
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.cfg')).sort()) {
      const path = join(dir, file);
      try {
        const cfg = loadDomainConfig(path);
        const domid = await createGuest(deps, cfg, { configDir: dir });
        spawnMonitor(this.runDir, cfg.name, domid, path, []);
        this.log.info({ dom: domid, domain: cfg.name, config: path }, 'guest started');
        this.emit('guest', `guest ${cfg.name}: domain ${domid} created from ${path}`);
      } catch (e) {
        this.log.error({ err: (e as Error).message, config: path }, 'guest did not start');
        this.emit('guest', `guest ${file}: not started: ${(e as Error).message}`);
      }
    }
  }

  /** Connect to xenstored as dom0 and write dom0's own nodes. */
  private async connectXenstore(): Promise<void> {
    try {
      this.xs = await XenstoreClient.connectRunDir(this.runDir);
      await writeDom0Nodes(this.xs);
    } catch (e) {
      this.log.error({ err: e }, 'cannot reach xenstored; domains will not be introduced to it');
      this.xs?.close();
      this.xs = null;
    }
  }

  status(): ServiceStatus[] {
    return this.services.map((s) => s.status());
  }

  find(name: string): Service {
    const s = this.services.find((x) => x.name === name);
    if (!s) throw new XenError('ENOENT', `no service named '${name}' (have: ${this.services.map((x) => x.name).join(', ')})`);
    return s;
  }

  /**
   * SIGKILL a service, as a fault would; the watcher restarts it per policy,
   * after `holdMs` if given (to see what guests do while it is down).
   */
  kill(name: string, holdMs = 0): { name: string; pid: number } {
    const s = this.find(name);
    const pid = s.pid;
    if (pid === null || !s.child) throw new XenError('ESRCH', `${name} is not running (${s.state})`);
    if (s.spec.kind === 'hypervisor' && holdMs) throw new XenError('EINVAL', 'the hypervisor is not restarted, so it cannot be held down');
    this.log.warn({ service: name, pid, holdMs }, 'killing on request (SIGKILL)');
    s.killRequested = true;
    s.holdMs = holdMs;
    s.downSince = Date.now();
    s.child.kill('SIGKILL');
    return { name, pid };
  }

  /** Stop a service in order and start a new incarnation (a new domain). */
  async restart(name: string): Promise<void> {
    const s = this.find(name);
    if (s.spec.kind === 'hypervisor') throw new XenError('EINVAL', 'the hypervisor cannot be restarted under a running stack; use xenbox down and up');
    if (this.shuttingDown) throw new XenError('EBUSY', 'the stack is going down');
    s.stopping = true;
    await s.stop(this.stopGraceMs);
    await this.exits.get(s);
    s.restarts++;
    s.restartTimes = [];
    await this.startIncarnation(s).catch((e) => this.log.error({ err: e, service: name }, 'restart failed'));
    await this.settled(s);
  }

  /** Stop everything in order.  Safe to call more than once. */
  down(reason: string, exitCode = 0): Promise<void> {
    this.shuttingDown ??= this.stopAll(reason, exitCode);
    return this.shuttingDown;
  }

  // --- starting -----------------------------------------------------------

  private add(spec: ServiceSpec): Service {
    const s = new Service(spec);
    s.onDeviceNotice = (n) => this.onDeviceNotice(s, n);
    this.services.push(s);
    return s;
  }

  private async startAndSettle(s: Service): Promise<void> {
    await this.startIncarnation(s).catch((e) => this.log.warn({ service: s.name, err: (e as Error).message }, 'start failed'));
    await this.settled(s);
  }

  /** Wait until a service is ready, or has been given up on. */
  private settled(s: Service): Promise<void> {
    const done = (st: ServiceState) => st === 'ready' || st === 'failed' || st === 'stopped';
    if (done(s.state)) return Promise.resolve();
    return new Promise((res) => {
      const on = (ev: ChangeEvent) => {
        if (ev.service.name === s.name && done(ev.service.state)) {
          this.off('change', on);
          res();
        }
      };
      this.on('change', on);
    });
  }

  private async incarnationEnv(s: Service): Promise<Record<string, string>> {
    const env: Record<string, string> = {
      [ENV_RUN_DIR]: this.runDir,
      [ENV_SUPERVISED]: this.runDir,
      [ENV_NAME]: s.name,
    };
    if (s.spec.ownDomain) {
      if (!this.dom0) throw new XenError('ENOTCONN', 'not connected to the hypervisor');
      // xenstored's domain is the xenstore domain (XEN_DOMCTL_CDF_xs_domain): VIRQ_DOM_EXC and getdomaininfo for it.
      const d = await this.dom0.call('domctl.createdomain', { name: s.name, kind: 'service', ...(s.spec.kind === 'xenstored' ? { flags: ['xs_domain' as const] } : {}) });
      s.domid = d.domid;
      env[ENV_DOMID] = String(d.domid);
      env[ENV_TOKEN] = d.token;
      if (this.xs && s.spec.kind !== 'xenstored') {
        const xs = this.xs;
        const secret = await withTimeout(introduceDomain(xs, d.domid, s.name), XENSTORE_TIMEOUT_MS, `introducing ${s.name} (d${d.domid}) to xenstored`).catch((e) => {
          this.log.error({ err: (e as Error).message, service: s.name }, 'domain not introduced to xenstored: it will have no xenstore access');
          return null;
        });
        if (secret) env[ENV_XS_SECRET] = secret;
        await this.moveDevicesTo(s, d.domid);
      }
    } else if (s.spec.kind !== 'hypervisor') {
      // A dom0 service (xenconsoled) acts as dom0: it reads dom0's token itself.
      s.domid = 0;
      env[ENV_DOMID] = '0';
      env[ENV_TOKEN] = `@${this.layout.dom0Token}`;
    }
    return env;
  }

  /**
   * Start one incarnation and wait for it to be ready.  Rejects if the child
   * dies first (onExit has then already dealt with it).  If no child could even
   * be started (the hypervisor refused the domain), the service is failed here.
   */
  private async startIncarnation(s: Service): Promise<void> {
    let env: Record<string, string>;
    try {
      env = await this.incarnationEnv(s);
    } catch (e) {
      s.lastExit = `could not create its domain: ${(e as Error).message}`;
      // A restart that could not get its domain (a hypervisor too busy to answer in time) is tried
      // again like a crash, with backoff and the crash-loop limit; at `up` the stack fails instead.
      if (s.downSince !== null && this.shuttingDown === null && this.dom0) {
        s.domid = null;
        this.scheduleRestart(s, { code: 1, signal: null }, s.lastExit);
        return;
      }
      s.state = 'failed';
      this.report(s, s.lastExit);
      return;
    }
    const args = s.spec.env[ENV_ARGS];
    if (args) env[ENV_ARGS] = args;
    if (s.downSince !== null) s.restartMetrics.begin(s.downSince, s.movedDevices);
    s.movedDevices = [];
    const ready = s.spawn(this.layout.logs, env, this.readyTimeoutMs, (e, child) => this.exits.set(s, this.onExit(s, e, child)));
    this.report(s, `starting (pid ${s.pid}${s.domid !== null && s.spec.ownDomain ? `, domid ${s.domid}` : ''})`);
    await ready;
    s.state = 'ready';
    if (s.spec.kind === 'xenstored' && s.restarts > 0) this.reconnectGuestRings();
    const recovered = s.downSince === null ? '' : `, recovered in ${this.noteRecovery(s)} ms`;
    this.report(s, `ready (pid ${s.pid}${s.domid !== null ? `, domid ${s.domid}` : ''}${recovered})`);
  }

  /** xenstored came back as a new domain: guests' store rings are re-offered to it and re-introduced (libxl/domain-rings.ts). */
  private reconnectGuestRings(): void {
    if (!this.dom0 || !this.xs) return;
    reconnectStoreRings(this.dom0, this.xs).then(
      (guests) => this.log.info({ guests }, 'guests\' xenstore rings reconnected to the new xenstored'),
      (e: unknown) => this.log.warn({ err: (e as Error).message }, 'could not reconnect guests\' xenstore rings'),
    );
  }

  /** Record how long the service was down (DESIGN §11 metrics; bench chaos). */
  private noteRecovery(s: Service): number {
    const now = Date.now();
    const ms = now - s.downSince!;
    s.downSince = null;
    s.recoveryMs.push(ms);
    if (s.recoveryMs.length > RECOVERY_HISTORY) s.recoveryMs.shift();
    s.restartMetrics.ready(now);
    this.log.info({ service: s.name, recoveryMs: ms }, 'recovered');
    return ms;
  }

  /** A backend connected a device or answered its first request: complete the restart's record, and say so. */
  private onDeviceNotice(s: Service, n: DeviceNotice): void {
    const ev = s.restartMetrics.notice(n);
    if (!ev) return;
    const r = ev.record;
    if (ev.what === 'connected') {
      this.log.info({ service: s.name, devices: r.devices, connectedMs: ev.ms }, 'every device reconnected after the restart');
    } else {
      this.log.info({ service: s.name, device: n.device, firstIoMs: ev.ms, reissued: r.reissued }, 'first guest I/O after the restart');
    }
  }

  // --- watching -----------------------------------------------------------

  private async onExit(s: Service, e: ExitInfo, child: ChildProcess): Promise<void> {
    if (child !== s.child) return;
    const how = describeExit(e);
    const deliberate = s.stopping || this.shuttingDown !== null;
    if (!deliberate) s.lastExit = s.lastExit && s.state === 'starting' ? s.lastExit : how;
    s.child = null;
    await this.destroyDomainOf(s);
    if (deliberate) {
      s.state = 'stopped';
      this.report(s, `stopped (${how})`);
      return;
    }
    this.log.error({ service: s.name, exit: how, requested: s.killRequested }, 'service died');
    s.downSince ??= Date.now();
    if (s.spec.kind === 'hypervisor') {
      // Nothing can answer dom0's calls any more: drop the connection so the
      // shutdown does not wait out a timeout on every destroy it would ask for.
      const dom0 = this.dom0;
      this.dom0 = null;
      void dom0?.close();
      s.state = 'failed';
      this.report(s, `died (${how}); without a hypervisor nothing can run: bringing the stack down`);
      void this.down('the hypervisor died', 1);
      return;
    }
    this.scheduleRestart(s, e, how);
  }

  private scheduleRestart(s: Service, e: ExitInfo, how: string): void {
    const policy = s.spec.restart;
    if (policy === 'never' || (policy === 'on-failure' && e.code === 0)) {
      s.state = e.code === 0 ? 'stopped' : 'failed';
      this.report(s, `${how}; restart policy '${policy}': not restarting`);
      return;
    }
    const { maxRestarts, windowSeconds } = this.opts.config.restart;
    const now = Date.now();
    if (s.killRequested) {
      // A kill on request is an experiment, not a crash loop: restart at once, uncounted.
      s.killRequested = false;
      s.state = 'restarting';
      const hold = s.holdMs;
      s.holdMs = 0;
      this.report(s, `${how} (on request); restarting${hold ? ` in ${hold} ms (held down on request)` : ''}`);
      const again = () => {
        if (this.shuttingDown || s.state !== 'restarting') return;
        s.restarts++;
        this.startIncarnation(s).catch((err) => this.log.warn({ service: s.name, err: (err as Error).message }, 'restart failed'));
      };
      if (hold) setTimeout(again, hold);
      else again();
      return;
    }
    s.restartTimes = s.restartTimes.filter((t) => now - t < windowSeconds * 1000);
    if (s.restartTimes.length >= maxRestarts) {
      s.state = 'failed';
      s.lastExit = `${how}; gave up after ${s.restartTimes.length} restarts in ${windowSeconds}s`;
      this.log.error({ service: s.name, restarts: s.restartTimes.length, windowSeconds }, 'crash loop: giving up');
      this.report(s, `${how}; crash loop: gave up after ${s.restartTimes.length} restarts in ${windowSeconds}s`);
      return;
    }
    const delay = RESTART_BACKOFF_MS[Math.min(s.restartTimes.length, RESTART_BACKOFF_MS.length - 1)]!;
    s.state = 'restarting';
    s.restartTimes.push(now + delay);
    this.report(s, `${how}; restarting${delay ? ` in ${delay} ms` : ''}`);
    setTimeout(() => {
      if (this.shuttingDown || s.state !== 'restarting') return;
      s.restarts++;
      this.startIncarnation(s).catch((err) => this.log.warn({ service: s.name, err: (err as Error).message }, 'restart failed'));
    }, delay);
  }

  private async destroyDomainOf(s: Service): Promise<void> {
    if (!s.spec.ownDomain || s.domid === null) return;
    const domid = s.domid;
    s.domid = null;
    // Before the domain is destroyed: xenstored deletes a dead domain's nodes (domain_tree_remove), backend directories included.
    if (this.xs && DRIVER_KINDS.has(s.spec.kind) && this.shuttingDown === null) await this.saveDevicesOf(s, domid);
    try {
      await this.dom0?.call('domctl.destroydomain', { domid });
    } catch (err) {
      if (!(err instanceof XenError && err.errno === 'ESRCH')) this.log.error({ err, serviceDomid: domid, service: s.name }, 'could not destroy the domain');
    }
    // xenstored forgets it (fires @releaseDomain). Not awaited: a restart must
    // not wait on xenstored, which may itself be the one restarting.
    if (this.xs && s.spec.kind !== 'xenstored') {
      const xs = this.xs;
      withTimeout(releaseDomain(xs, domid), XENSTORE_TIMEOUT_MS, `releasing d${domid} in xenstored`).catch((e) =>
        this.log.warn({ err: (e as Error).message, serviceDomid: domid }, 'could not release the domain in xenstored'),
      );
    }
  }

  /** A dead driver domain's devices, kept for its next incarnation (device-rebind.ts). */
  private async saveDevicesOf(s: Service, domid: DomId): Promise<void> {
    try {
      const devices = await withTimeout(snapshotBackendDevices(this.xs!, domid), XENSTORE_TIMEOUT_MS, `saving the devices of d${domid}`);
      // A domain that died before serving anything passes on what its predecessor left.
      if (devices.length || !s.orphanedDevices) s.orphanedDevices = { from: domid, devices };
      else s.orphanedDevices.from = domid;
    } catch (e) {
      this.log.error({ service: s.name, err: (e as Error).message }, 'could not save the devices of the dead driver domain: they will not move to its successor');
    }
  }

  /** Give a new driver-domain incarnation the devices its predecessor served. */
  private async moveDevicesTo(s: Service, domid: DomId): Promise<void> {
    const orphans = s.orphanedDevices;
    if (!orphans || !this.xs) return;
    s.orphanedDevices = null;
    try {
      const moved = await withTimeout(rebindDevices(this.xs, orphans.devices, orphans.from, domid), XENSTORE_TIMEOUT_MS, `moving devices to d${domid}`);
      // The restart record waits only for devices a frontend was using (an HVM guest's own vbd waits for PV drivers it may never load).
      s.movedDevices = moved.filter((d) => d.wasConnected).map((d) => deviceName(d.kind, d.frontend, d.devid));
      if (moved.length) this.log.info({ service: s.name, from: orphans.from, to: domid, devices: moved.map((d) => deviceName(d.kind, d.frontend, d.devid)) }, 'devices moved to the new incarnation');
    } catch (e) {
      this.log.error({ service: s.name, err: (e as Error).message }, 'could not move devices to the new incarnation');
    }
  }

  private report(s: Service, message: string): void {
    this.log.info({ service: s.name, state: s.state, servicePid: s.pid, serviceDomid: s.domid }, message);
    this.writeState();
    this.emit('change', { service: s.status(), message });
  }

  private writeState(): void {
    try {
      writeFileSync(this.layout.supervisorState, JSON.stringify({ supervisorPid: process.pid, services: this.status() }, null, 2) + '\n', { mode: 0o600 });
    } catch {
      // The run dir is going away (down); nothing to record.
    }
  }

  // --- stopping -----------------------------------------------------------

  private async stopAll(reason: string, exitCode: number): Promise<void> {
    this.log.info({ reason }, 'bringing the stack down');
    await this.destroyGuests();
    const tiers = [...new Set(this.services.map((s) => s.spec.tier))].sort((a, b) => b - a);
    for (const tier of tiers) {
      const group = this.services.filter((s) => s.spec.tier === tier);
      if (tier <= 1 && this.xs) {
        this.xs.close();
        this.xs = null;
      }
      if (tier === 0) await this.dom0?.close();
      await Promise.all(group.map(async (s) => {
        await s.stop(this.stopGraceMs);
        await this.exits.get(s);
        s.state = 'stopped';
      }));
    }
    await this.control?.close();
    // Anything else started for this run dir (xl's per-guest monitors) goes too.
    for (const pid of leftoverProcesses(this.runDir)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
    }
    removeRuntimeFiles(this.runDir);
    this.log.info('stack is down');
    this.emit('stopped', exitCode);
  }

  /** Guests go first (DESIGN §11): destroy every pvh/hvm domain while their backends still run. */
  private async destroyGuests(): Promise<void> {
    if (!this.dom0) return;
    try {
      const guests = (await this.dom0.call('sysctl.getdomaininfolist', {})).filter((d) => d.kind === 'pvh' || d.kind === 'hvm');
      for (const g of guests) {
        await this.dom0.call('domctl.destroydomain', { domid: g.domid });
        if (this.xs) await withTimeout(releaseDomain(this.xs, g.domid), XENSTORE_TIMEOUT_MS, `releasing d${g.domid}`).catch(() => undefined);
        this.log.info({ dom: g.domid, domain: g.name }, 'guest destroyed');
      }
    } catch (e) {
      this.log.error({ err: e }, 'could not destroy the guests');
    }
  }

  // --- control socket -----------------------------------------------------

  private async bindControl(): Promise<void> {
    const server = new RpcServer({
      endpoint: ipcEndpoint(this.layout.supervisorSocket),
      log: this.log,
      handle: (_peer, call) => this.serveControl(call.op, call.args),
    });
    await server.bind();
    this.control = server;
  }

  private async serveControl(op: string, raw: unknown): Promise<SupervisorCalls[keyof SupervisorCalls]['reply']> {
    switch (op) {
      case 'status':
        return { runDir: this.runDir, pid: process.pid, services: this.status() };
      case 'kill':
      {
        const a = argObject(op, raw);
        return this.kill(argString(op, a, 'name', 64), argOptInt(op, a, 'holdMs', 0, 3_600_000) ?? 0);
      }
      case 'restart': {
        const name = argString(op, argObject(op, raw), 'name', 64);
        await this.restart(name);
        return { name };
      }
      case 'down':
        // Reply first; the caller watches the pid file to see the end.
        setImmediate(() => void this.down('xenbox down'));
        return null;
      default:
        throw new XenError('ENOSYS', `no supervisor call '${op}'`);
    }
  }
}
