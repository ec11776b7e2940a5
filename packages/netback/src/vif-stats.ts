/**
 * A vif's counters, named from the guest's side (see abi NETIF_STAT_NAMES):
 * rx_* is what the guest was given, tx_* what it sent (Linux's /sys vif
 * counters are the other way round).  They are
 * published under the backend directory (abi NETIF_STATS_DIR) once a
 * second when they changed, for dom0 tools (`xl top`, `xl network-list`).
 */
import { NETIF_STAT_NAMES, NETIF_STATS_DIR, type NetifStatName } from '@xenbox/abi';
import type { XenstoreClient } from '@xenbox/libxen';

export type VifCounters = Record<NetifStatName, number>;

export function zeroCounters(): VifCounters {
  return Object.fromEntries(NETIF_STAT_NAMES.map((n) => [n, 0])) as VifCounters;
}

export class VifStats {
  readonly c: VifCounters = zeroCounters();
  private published = '';

  /** Write the counters if they changed since the last write. */
  async publish(xs: XenstoreClient, backendDir: string): Promise<void> {
    const snapshot = JSON.stringify(this.c);
    if (snapshot === this.published) return;
    const values = { ...this.c };
    await xs.transaction(async (t) => {
      for (const n of NETIF_STAT_NAMES) await t.write(`${backendDir}/${NETIF_STATS_DIR}/${n}`, String(values[n]));
    });
    this.published = snapshot;
  }
}
