/**
 * One vif's backend: the xenbus side of Linux xen-netback/xenbus.c
 * (netback_probe, frontend_changed, connect, set_backend_state) plus what
 * the vif-bridge hotplug script does in dom0 (attach to the bridge, write
 * hotplug-status).
 *
 *   start:   read mac, bridge (default xenbr0), rate, mtu; a bridge this
 *            netback does not serve fails like vif-bridge ("Could not find
 *            bridge device"): hotplug-error + hotplug-status=error, the
 *            xenbus error node, state Closed.  Otherwise features, InitWait,
 *            hotplug-status=connected.
 *   frontend Initialised/Connected: read tx-ring-ref, rx-ring-ref,
 *            event-channel (or -tx/-rx), request-rx-copy (required, as in
 *            Linux: EOPNOTSUPP + Closed without it), feature-rx-notify
 *            (required, as in Linux since 2014: EINVAL), feature-sg,
 *            feature-no-csum-offload; map both rings, bind, Connected.
 *   frontend Closing -> Closing; Closed/Unknown -> Closed; Initialising
 *            after Closed -> InitWait again (reconnect).
 *   toolstack online=0 + state Closing (libxl's device removal): let go of
 *            the rings and go Closed without waiting for the frontend, so a
 *            frontend that does not answer cannot hold up the removal.
 */
import {
  NETBACK_FEATURES,
  NETIF_DEFAULT_MTU,
  XenError,
  XenbusState,
  deviceName,
  parseMac,
  parseNetifRate,
  type DomId,
  type XenbusStateValue,
} from '@xenbox/abi';
import {
  notifySupervisor,
  readXenbusState,
  readXenbusUint,
  switchXenbusState,
  writeXenbusKeys,
  type BackendDevice,
  type Evtchn,
  type GrantMapper,
  type HypervisorConnection,
  type XenstoreClient,
  type XsWatch,
} from '@xenbox/libxen';
import type { Logger } from '@xenbox/libxen';
import type { Bridge } from './bridge.js';
import { VifQueue } from './vif-queue.js';
import { VifStats } from './vif-stats.js';

export interface VifContext {
  self: DomId;
  hv: HypervisorConnection;
  xs: XenstoreClient;
  mapper: GrantMapper;
  evtchn: Evtchn;
  log: Logger;
  bridges: Map<string, Bridge>;
}

interface VifConfig {
  mac: string;
  bridge: string;
  mtu: number;
  rate: { bytes: number; usecs: number } | null;
}

export class Vif {
  readonly name: string;
  readonly stats = new VifStats();
  private queue: VifQueue | null = null;
  private bridge: Bridge | null = null;
  private cfg: VifConfig | null = null;
  private frontendDir = '';
  private watches: XsWatch[] = [];
  /** Reconciliations run one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private destroyed = false;

  constructor(
    private readonly ctx: VifContext,
    readonly dev: BackendDevice,
  ) {
    this.name = `vif${dev.frontend}.${dev.devid}`;
  }

  /** "vif/<frontend>/<devid>", as the supervisor names devices. */
  private get device(): string {
    return deviceName('vif', this.dev.frontend, this.dev.devid);
  }

  private get be(): string {
    return this.dev.path;
  }

  get connected(): boolean {
    return this.queue !== null;
  }

  /** The data path, when connected (tests and the stats timer). */
  get dataPath(): VifQueue | null {
    return this.queue;
  }

  async start(): Promise<void> {
    const xs = this.ctx.xs;
    this.frontendDir = (await xs.tryRead(`${this.be}/frontend`)) ?? '';
    if (!/^\/local\/domain\/\d+\/device\/vif\/\d+$/.test(this.frontendDir)) {
      await this.fatal('EINVAL', `frontend = "${this.frontendDir}" is not a vif frontend directory (/local/domain/<domid>/device/vif/<devid>)`, true);
      return;
    }
    const cfg = await this.readConfig();
    if (!cfg) return;
    this.cfg = cfg;
    await writeXenbusKeys(xs, this.be, { ...NETBACK_FEATURES, 'hotplug-status': 'connected' });
    await switchXenbusState(xs, this.be, XenbusState.InitWait);
    this.ctx.log.info({ vif: this.name, mac: cfg.mac, bridge: cfg.bridge, mtu: cfg.mtu, rate: cfg.rate }, 'vif ready for its frontend (InitWait)');
    for (const path of [this.be, `${this.frontendDir}/state`]) {
      const w = await xs.watch(path);
      this.watches.push(w);
      void this.follow(w);
    }
  }

  private async follow(w: XsWatch): Promise<void> {
    for await (const ev of w) {
      if (this.destroyed) return;
      const p = ev.path;
      if (p === `${this.be}/rate`) this.schedule(() => this.rateChanged());
      else if (p === this.be || p === `${this.be}/state` || p === `${this.be}/online` || p.startsWith(this.frontendDir)) this.schedule(() => this.reconcile());
    }
  }

  private schedule(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((e) => this.ctx.log.error({ vif: this.name, err: (e as Error).message }, 'vif state change failed'));
  }

  /** Read the toolstack's keys; a bad device is failed as vif-bridge and xenbus_dev_fatal do, and null returned. */
  private async readConfig(): Promise<VifConfig | null> {
    const xs = this.ctx.xs;
    const mac = (await xs.tryRead(`${this.be}/mac`)) ?? '';
    if (!parseMac(mac)) return this.fatal('EINVAL', `mac "${mac}" is not a MAC address (xx:xx:xx:xx:xx:xx)`, true);
    const bridge = (await xs.tryRead(`${this.be}/bridge`)) || 'xenbr0';
    if (!this.ctx.bridges.has(bridge)) {
      return this.fatal('ENODEV', `Could not find bridge device ${bridge}: this netback (domain ${this.ctx.self}) serves ${[...this.ctx.bridges.keys()].join(', ')}`, true);
    }
    let mtu = NETIF_DEFAULT_MTU;
    try {
      mtu = await readXenbusUint(xs, this.be, 'mtu', NETIF_DEFAULT_MTU);
    } catch (e) {
      return this.fatal('EINVAL', (e as Error).message, true);
    }
    if (mtu < 68 || mtu > 65535 - 14) return this.fatal('EINVAL', `mtu ${mtu} is out of range (68-65521)`, true);
    return { mac, bridge, mtu, rate: await this.readRate() };
  }

  /** xen_net_read_rate: a malformed rate means no limit, with a warning. */
  private async readRate(): Promise<{ bytes: number; usecs: number } | null> {
    const text = await this.ctx.xs.tryRead(`${this.be}/rate`);
    if (text === undefined || text === '') return null;
    const rate = parseNetifRate(text);
    if (!rate) this.ctx.log.warn({ vif: this.name, rate: text }, 'failed to parse network rate limit; traffic unlimited');
    return rate;
  }

  private async rateChanged(): Promise<void> {
    if (!this.cfg) return;
    this.cfg.rate = await this.readRate();
    this.queue?.setRate(this.cfg.rate);
  }

  /**
   * A device that cannot work: say why where the toolstack looks
   * (hotplug-error/hotplug-status for a hotplug failure, as
   * xen-hotplug-common.sh's fatal; error/<backend path>/error as
   * xenbus_dev_fatal) and close.
   */
  private async fatal(errno: string, message: string, hotplug: boolean): Promise<null> {
    const xs = this.ctx.xs;
    this.ctx.log.error({ vif: this.name, errno }, message);
    const keys: Record<string, string> = hotplug ? { 'hotplug-error': message, 'hotplug-status': 'error' } : {};
    await writeXenbusKeys(xs, this.be, keys).catch(() => undefined);
    const rel = this.be.replace(/^\/local\/domain\/\d+\//, '');
    await xs.write(`/local/domain/${this.ctx.self}/error/${rel}/error`, `${errno} ${message}`).catch(() => undefined);
    await this.disconnect();
    await switchXenbusState(xs, this.be, XenbusState.Closed).catch(() => undefined);
    return null;
  }

  /** frontend_changed, plus libxl's removal request. */
  private async reconcile(): Promise<void> {
    if (this.destroyed || !this.cfg) return;
    const xs = this.ctx.xs;
    const beState = await readXenbusState(xs, this.be);
    if (beState === XenbusState.Unknown) return; // directory going away
    const online = (await xs.tryRead(`${this.be}/online`)) === '1';
    if (!online && beState === XenbusState.Closing) {
      this.ctx.log.info({ vif: this.name }, 'toolstack removes the vif');
      await this.disconnect();
      await this.setState(XenbusState.Closed);
      return;
    }
    const feState = await readXenbusState(xs, this.frontendDir);
    switch (feState) {
      case XenbusState.Initialising:
        if (beState === XenbusState.Closed && online) {
          this.ctx.log.info({ vif: this.name }, 'frontend is back: prepare for reconnect');
          await this.setState(XenbusState.InitWait);
        }
        break;
      case XenbusState.Initialised:
      case XenbusState.Connected:
        if (beState === XenbusState.InitWait) await this.connect();
        break;
      case XenbusState.Closing:
        await this.disconnect();
        if (beState !== XenbusState.Closed) await this.setState(XenbusState.Closing);
        break;
      case XenbusState.Closed:
      case XenbusState.Unknown:
        await this.disconnect();
        await this.setState(XenbusState.Closed);
        break;
      default:
        break;
    }
  }

  private async setState(s: XenbusStateValue): Promise<void> {
    await switchXenbusState(this.ctx.xs, this.be, s);
  }

  /** connect(): read the frontend's ring details, map, bind, Connected. */
  private async connect(): Promise<void> {
    const { xs, mapper, evtchn, log } = this.ctx;
    const fe = this.frontendDir;
    const fdom = this.dev.frontend;
    const cfg = this.cfg!;
    let txRef: number, rxRef: number, port: number;
    try {
      if ((await readXenbusUint(xs, fe, 'request-rx-copy', 0)) !== 1) {
        await this.fatal('EOPNOTSUPP', `${fe}: frontend does not support rx-copy (request-rx-copy is not 1); rx-flip is not offered`, false);
        return;
      }
      // Linux made it mandatory in 2014 ("xen-netback: make feature-rx-notify mandatory"): without it rx can stall.
      if ((await readXenbusUint(xs, fe, 'feature-rx-notify', 0)) !== 1) {
        await this.fatal('EINVAL', `${fe}: feature-rx-notify is mandatory`, false);
        return;
      }
      if ((await readXenbusUint(xs, fe, 'multi-queue-num-queues', 1)) > 1) {
        await this.fatal('EINVAL', `${fe}: asks for several queues; multi-queue-max-queues is 1`, false);
        return;
      }
      txRef = await readXenbusUint(xs, fe, 'tx-ring-ref');
      rxRef = await readXenbusUint(xs, fe, 'rx-ring-ref');
      const single = await xs.tryRead(`${fe}/event-channel`);
      port = single !== undefined ? await readXenbusUint(xs, fe, 'event-channel') : await readXenbusUint(xs, fe, 'event-channel-tx');
      if (single === undefined && (await readXenbusUint(xs, fe, 'event-channel-rx')) !== port) {
        throw new XenError('EINVAL', 'split event channels (event-channel-tx/-rx) are not offered (feature-split-event-channels=0)');
      }
    } catch (e) {
      await this.fatal('EINVAL', `reading ${fe}: ${(e as Error).message}`, false);
      return;
    }
    const frontendSg = (await readXenbusUint(xs, fe, 'feature-sg', 0).catch(() => 0)) === 1;
    const frontendCsumOffload = (await readXenbusUint(xs, fe, 'feature-no-csum-offload', 0).catch(() => 0)) !== 1;
    const maps = await mapper.map([
      { dom: fdom, ref: txRef },
      { dom: fdom, ref: rxRef },
    ]);
    const [tx, rx] = maps;
    if (!tx?.page || !rx?.page) {
      await mapper.unmap(maps.filter((m) => m.page)).catch(() => undefined);
      await this.fatal('EFAULT', `mapping ring refs tx ${txRef} / rx ${rxRef} of domain ${fdom} failed (GNTST ${tx?.status}/${rx?.status})`, false);
      return;
    }
    let local: number;
    try {
      local = await evtchn.bindInterdomain(fdom, port);
    } catch (e) {
      await mapper.unmap(maps).catch(() => undefined);
      await this.fatal('EINVAL', `binding event channel ${port} of domain ${fdom}: ${(e as Error).message}`, false);
      return;
    }
    const bridge = this.ctx.bridges.get(cfg.bridge)!;
    this.queue = new VifQueue({
      hv: this.ctx.hv,
      mapper,
      evtchn,
      log,
      name: this.name,
      frontend: fdom,
      txPage: tx.page,
      txHandle: tx.handle,
      rxPage: rx.page,
      rxHandle: rx.handle,
      port: local,
      counters: this.stats.c,
      mtu: cfg.mtu,
      rate: cfg.rate,
      frontendSg,
      frontendCsumOffload,
      input: (from, frame) => bridge.input(from, frame),
      onFatal: (why) => void this.fatal('EIO', `frontend broke the ring protocol: ${why}`, false).catch(() => undefined),
      onFirstResponse: () => notifySupervisor({ type: 'device-first-io', device: this.device, at: Date.now(), requestsBefore: 0 }),
    });
    this.bridge = bridge;
    bridge.addPort(this.queue);
    await this.setState(XenbusState.Connected);
    notifySupervisor({ type: 'device-connected', device: this.device, at: Date.now() });
    log.info({ vif: this.name, bridge: cfg.bridge, txRef, rxRef, port, frontendSg, frontendCsumOffload }, 'vif connected');
    this.queue.kick();
  }

  /** xenvif_disconnect: off the bridge, rings unmapped, channel closed. */
  private async disconnect(): Promise<void> {
    const q = this.queue;
    if (!q) return;
    this.queue = null;
    this.bridge?.removePort(q);
    this.bridge = null;
    await q.close();
    this.ctx.log.info({ vif: this.name }, 'vif disconnected');
  }

  /** Publish counters (the stats timer). */
  async publishStats(): Promise<void> {
    if (this.destroyed || !this.cfg) return;
    await this.stats.publish(this.ctx.xs, this.be);
  }

  /** The device directory went away (or netback stops). */
  async destroy(): Promise<void> {
    this.destroyed = true;
    for (const w of this.watches) await w.unwatch().catch(() => undefined);
    this.watches = [];
    await this.chain.catch(() => undefined);
    await this.disconnect();
  }
}
