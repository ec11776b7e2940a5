/**
 * What guests do during a chaos run: every `periodMs`, each guest's device
 * counters as its backends publish them (blkback: rd_sect/wr_sect, netback:
 * rx_bytes/tx_bytes under the backend directory's statistics/), read through
 * xenstore like `xl top` does.  Turned into MB/s series for the plot.
 */
import { XenstoreClient } from '@xenbox/libxen';
import { deviceCounters } from '../xl/top.js';
import { ratesFromCounters, type PlotSeries } from './chaos-plot.js';

interface Sample {
  t: number;
  disk: number;
  net: number;
}

export class ThroughputSampler {
  private readonly samples = new Map<string, Sample[]>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  private constructor(
    private readonly xs: XenstoreClient,
    private readonly t0: number,
  ) {}

  static async start(runDir: string, periodMs: number, t0 = Date.now()): Promise<ThroughputSampler> {
    const xs = await XenstoreClient.connectRunDir(runDir, { timeoutMs: 5000 });
    const s = new ThroughputSampler(xs, t0);
    s.timer = setInterval(() => void s.sample(), periodMs);
    await s.sample();
    return s;
  }

  /** One look at every guest with devices; a failed look (xenstored restarting) is skipped. */
  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const t = (Date.now() - this.t0) / 1000;
      for (const id of await this.xs.directory('/local/domain')) {
        const domid = Number(id);
        if (!Number.isInteger(domid) || domid === 0) continue;
        const c = await deviceCounters(this.xs, domid);
        if (c.vbds === 0 && c.nets === 0) continue;
        const name = (await this.xs.tryRead(`/local/domain/${domid}/name`)) ?? `d${domid}`;
        const list = this.samples.get(name) ?? [];
        list.push({ t, disk: (c.vbdRsect + c.vbdWsect) * 512, net: c.netTxBytes + c.netRxBytes });
        this.samples.set(name, list);
      }
    } catch {
      // xenstored may be the one being killed: the gap shows in the plot.
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<PlotSeries[]> {
    if (this.timer) clearInterval(this.timer);
    await this.sample();
    this.xs.close();
    const series: PlotSeries[] = [];
    for (const [name, s] of this.samples) {
      if (s.some((x) => x.disk > 0)) series.push({ name: `${name} disk`, points: ratesFromCounters(s.map((x) => ({ t: x.t, total: x.disk })), 1e-6) });
      if (s.some((x) => x.net > 0)) series.push({ name: `${name} net`, points: ratesFromCounters(s.map((x) => ({ t: x.t, total: x.net })), 1e-6) });
    }
    return series;
  }
}
