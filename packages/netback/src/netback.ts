/**
 * The network driver domain's service: its bridges, and a Vif for every
 * device directory the toolstack makes under /local/domain/<self>/backend/vif
 * (the xenbus backend watch, xenbus_probe_backend.c).  One process serves
 * any number of vifs on any number of bridges.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DomId } from '@xenbox/abi';
import { BackendDeviceWatcher, Evtchn, GrantMapper, type HypervisorConnection, type XenstoreClient } from '@xenbox/libxen';
import type { Logger } from '@xenbox/libxen';
import { Bridge } from './bridge.js';
import type { NetbackConfig } from './bridge-config.js';
import { PcapWriter } from './pcap-writer.js';
import { Vif, type VifContext } from './vif.js';

/** How often counters reach xenstore. */
export const STATS_INTERVAL_MS = 1000;

export class Netback {
  readonly bridges = new Map<string, Bridge>();
  readonly vifs = new Map<string, Vif>();
  private readonly captures: PcapWriter[] = [];
  private watcher: BackendDeviceWatcher | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private readonly ctx: VifContext;

  constructor(
    self: DomId,
    hv: HypervisorConnection,
    xs: XenstoreClient,
    private readonly log: Logger,
    cfg: NetbackConfig,
  ) {
    for (const name of cfg.bridges) {
      const file = cfg.pcap.get(name);
      let tap: PcapWriter | null = null;
      if (file) {
        mkdirSync(dirname(file), { recursive: true });
        tap = new PcapWriter(file);
        this.captures.push(tap);
        log.info({ bridge: name, file }, 'capturing bridge traffic');
      }
      this.bridges.set(name, new Bridge(name, tap));
    }
    this.ctx = { self, hv, xs, mapper: new GrantMapper(hv), evtchn: Evtchn.of(hv), log, bridges: this.bridges };
  }

  async start(): Promise<void> {
    this.watcher = new BackendDeviceWatcher(this.ctx.xs, this.ctx.self, 'vif', {
      added: async (dev) => {
        const vif = new Vif(this.ctx, dev);
        this.vifs.set(dev.path, vif);
        await vif.start();
      },
      removed: async (dev) => {
        const vif = this.vifs.get(dev.path);
        this.vifs.delete(dev.path);
        await vif?.destroy();
        this.log.info({ vif: vif?.name }, 'vif removed');
      },
      onError: (e, dev) => this.log.error({ err: (e as Error).message, device: dev?.path }, 'vif device error'),
    });
    await this.watcher.start();
    this.statsTimer = setInterval(() => void this.publishStats(), STATS_INTERVAL_MS);
    this.statsTimer.unref();
  }

  private async publishStats(): Promise<void> {
    for (const vif of this.vifs.values()) {
      await vif.publishStats().catch((e) => this.log.warn({ vif: vif.name, err: (e as Error).message }, 'publishing counters failed'));
    }
  }

  async stop(): Promise<void> {
    if (this.statsTimer) clearInterval(this.statsTimer);
    await this.watcher?.stop();
    for (const vif of this.vifs.values()) await vif.destroy().catch(() => undefined);
    this.vifs.clear();
    for (const b of this.bridges.values()) b.close();
    for (const c of this.captures) c.close();
  }
}
