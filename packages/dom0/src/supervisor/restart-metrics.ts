/**
 * What each restart of a driver domain cost its guests (issue #10, DESIGN
 * §11): from the kill (or the death being noticed) to the new incarnation
 * being ready, to every device it took over being Connected again, and to
 * the first guest request it answered; and how many requests the frontends
 * issued again.  The backends say when a device connects and when it first
 * answers (DeviceNotice, over the supervisor's IPC channel); this file
 * turns those notices into one RestartMetrics record per restart.
 *
 * Only the devices moved from the dead incarnation count: a guest created
 * after the restart is not recovering from anything.
 */
import { RECOVERY_HISTORY, type DeviceNotice, type RestartMetrics } from '@xenbox/abi';

/** What a notice completed, for the supervisor's log line. */
export interface MetricEvent {
  what: 'connected' | 'first-io';
  ms: number;
  record: RestartMetrics;
}

interface OpenRecord {
  record: RestartMetrics;
  /** Moved devices not yet Connected in the new incarnation. */
  toConnect: Set<string>;
  /** Moved devices that have not answered a request yet. */
  toAnswer: Set<string>;
}

export class RestartTracker {
  readonly records: RestartMetrics[] = [];
  private open: OpenRecord | null = null;

  /** @param countsReissued whether the frontends of this backend re-issue what was in flight (blkfront does, netfront does not). */
  constructor(private readonly countsReissued: boolean) {}

  /** A restart began at `at` (ms since the epoch) and these devices moved to the new incarnation. */
  begin(at: number, devices: string[]): void {
    const record: RestartMetrics = { at, readyMs: null, connectedMs: null, firstIoMs: null, reissued: this.countsReissued && devices.length ? 0 : null, devices: devices.length };
    // A retry of the same restart (the first new incarnation died before it was ready) replaces its record.
    if (this.records[this.records.length - 1]?.at === at) this.records.pop();
    this.records.push(record);
    if (this.records.length > RECOVERY_HISTORY) this.records.shift();
    this.open = { record, toConnect: new Set(devices), toAnswer: new Set(devices) };
  }

  /** The new incarnation reported ready `now`; returns the ms since the restart began, or null with no restart open. */
  ready(now: number): number | null {
    const r = this.open?.record;
    if (!r || r.readyMs !== null) return null;
    r.readyMs = now - r.at;
    return r.readyMs;
  }

  /** A backend's notice; what it completed, if anything. */
  notice(n: DeviceNotice): MetricEvent | null {
    const o = this.open;
    if (!o) return null;
    const r = o.record;
    if (n.type === 'device-connected') {
      if (!o.toConnect.delete(n.device) || o.toConnect.size > 0) return null;
      r.connectedMs = n.at - r.at;
      return { what: 'connected', ms: r.connectedMs, record: r };
    }
    if (!o.toAnswer.delete(n.device)) return null;
    if (r.reissued !== null) r.reissued += n.requestsBefore;
    if (o.toAnswer.size === 0 && o.toConnect.size === 0) this.open = null;
    if (r.firstIoMs !== null) return null;
    r.firstIoMs = n.at - r.at;
    return { what: 'first-io', ms: r.firstIoMs, record: r };
  }
}
