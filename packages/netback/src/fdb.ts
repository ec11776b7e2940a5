/**
 * A bridge's forwarding database: which port a source MAC address was last
 * seen on, forgotten after the ageing time (Linux net/bridge br_fdb.c;
 * `ageing_time` defaults to 300 s, BR_DEFAULT_AGEING_TIME).
 */
import type { BridgePort } from './frame.js';

export const DEFAULT_AGEING_MS = 300_000;

interface Entry {
  port: BridgePort;
  seen: number;
}

export class Fdb {
  private readonly entries = new Map<number, Entry>();

  constructor(
    readonly ageingMs = DEFAULT_AGEING_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** br_fdb_update: (re)learn `mac` on `port`; a station that moved is moved. */
  learn(mac: number, port: BridgePort): void {
    const e = this.entries.get(mac);
    if (e) {
      e.port = port;
      e.seen = this.now();
    } else {
      this.entries.set(mac, { port, seen: this.now() });
    }
  }

  /** The port `mac` lives on, if learned and not aged out. */
  lookup(mac: number): BridgePort | undefined {
    const e = this.entries.get(mac);
    if (!e) return undefined;
    if (this.now() - e.seen > this.ageingMs) {
      this.entries.delete(mac);
      return undefined;
    }
    return e.port;
  }

  /** br_fdb_cleanup: drop every aged entry. */
  age(): void {
    const limit = this.now() - this.ageingMs;
    for (const [mac, e] of this.entries) if (e.seen < limit) this.entries.delete(mac);
  }

  /** A port left the bridge: forget what was learned on it (br_fdb_delete_by_port). */
  forgetPort(port: BridgePort): void {
    for (const [mac, e] of this.entries) if (e.port === port) this.entries.delete(mac);
  }

  get size(): number {
    return this.entries.size;
  }
}
