import { describe, expect, it } from 'vitest';
import { RestartTracker } from '../src/supervisor/restart-metrics.js';

const T0 = 1_000_000;

describe('a blkback restart record', () => {
  it('times ready, every moved device Connected, and the first answer from the kill, and adds up what the frontends re-issued', () => {
    const t = new RestartTracker(true);
    t.begin(T0, ['vbd/5/51712', 'vbd/6/51712']);
    expect(t.ready(T0 + 300)).toBe(300);
    expect(t.notice({ type: 'device-connected', device: 'vbd/5/51712', at: T0 + 350 })).toBeNull();
    expect(t.notice({ type: 'device-connected', device: 'vbd/6/51712', at: T0 + 360 })).toMatchObject({ what: 'connected', ms: 360 });
    expect(t.notice({ type: 'device-first-io', device: 'vbd/6/51712', at: T0 + 380, requestsBefore: 4 })).toMatchObject({ what: 'first-io', ms: 380 });
    // The second device's first answer adds its re-issued requests but does not move the first-I/O time.
    expect(t.notice({ type: 'device-first-io', device: 'vbd/5/51712', at: T0 + 400, requestsBefore: 7 })).toBeNull();
    expect(t.records).toEqual([{ at: T0, readyMs: 300, connectedMs: 360, firstIoMs: 380, reissued: 11, devices: 2 }]);
  });

  it('ignores devices it did not take over (a guest created after the restart) and notices repeated for one device', () => {
    const t = new RestartTracker(true);
    t.begin(T0, ['vbd/5/51712']);
    expect(t.notice({ type: 'device-first-io', device: 'vbd/9/51712', at: T0 + 50, requestsBefore: 3 })).toBeNull();
    t.notice({ type: 'device-connected', device: 'vbd/5/51712', at: T0 + 100 });
    t.notice({ type: 'device-first-io', device: 'vbd/5/51712', at: T0 + 120, requestsBefore: 2 });
    expect(t.notice({ type: 'device-first-io', device: 'vbd/5/51712', at: T0 + 900, requestsBefore: 30 })).toBeNull();
    expect(t.records[0]).toMatchObject({ firstIoMs: 120, reissued: 2 });
  });

  it('leaves the first I/O null when the guest does nothing before the next kill, and starts a new record then', () => {
    const t = new RestartTracker(true);
    t.begin(T0, ['vbd/5/51712']);
    t.ready(T0 + 200);
    t.begin(T0 + 5000, ['vbd/5/51712']);
    t.notice({ type: 'device-first-io', device: 'vbd/5/51712', at: T0 + 5400, requestsBefore: 1 });
    expect(t.records.map((r) => r.firstIoMs)).toEqual([null, 400]);
  });

  it('keeps one record for a restart whose first new incarnation died before it was ready', () => {
    const t = new RestartTracker(true);
    t.begin(T0, ['vbd/5/51712']);
    t.begin(T0, []);
    expect(t.records).toHaveLength(1);
  });
});

describe('a netback restart record', () => {
  it('has no re-issue count: netfront re-sends nothing', () => {
    const t = new RestartTracker(false);
    t.begin(T0, ['vif/5/0']);
    t.notice({ type: 'device-first-io', device: 'vif/5/0', at: T0 + 90, requestsBefore: 0 });
    expect(t.records[0]).toMatchObject({ firstIoMs: 90, reissued: null });
  });

  it('says nothing without a restart under way (the first incarnation connecting its devices)', () => {
    const t = new RestartTracker(false);
    expect(t.ready(T0)).toBeNull();
    expect(t.notice({ type: 'device-connected', device: 'vif/5/0', at: T0 })).toBeNull();
    expect(t.records).toEqual([]);
  });
});
