import { afterEach, describe, expect, it } from 'vitest';
import { VcpuScheduler } from '../../dist/sched/index.js';
import { addGuest, busyLoop, measure, noHooks, sleep } from './guests.js';

let s: VcpuScheduler | undefined;
afterEach(async () => {
  await s?.destroy();
  s = undefined;
});

describe('cpupools', () => {
  it('starts with Pool-0 holding every pCPU under credit2', async () => {
    s = await VcpuScheduler.create({ pcpus: 2, hooks: noHooks });
    expect(s.cpupoolList()).toEqual([{ poolid: 0, name: 'Pool-0', sched: 'credit2', cpus: [0, 1], domains: [] }]);
  });

  it('creates a pool from a pCPU taken out of Pool-0, migrates a domain there, and its vCPU then runs only there', async () => {
    s = await VcpuScheduler.create({ pcpus: 2, hooks: noHooks });
    addGuest(s, 1, busyLoop);
    addGuest(s, 2, busyLoop);
    expect(() => s!.cpupoolCreate('rt', 'rtds', [1])).toThrow(/EBUSY/);
    s.cpupoolCpuRemove('Pool-0', 1);
    s.cpupoolCreate('rt', 'rtds', [1]);
    await s.cpupoolMigrate(2, 'rt');
    expect(s.cpupoolList()).toEqual([
      { poolid: 0, name: 'Pool-0', sched: 'credit2', cpus: [0], domains: [1] },
      { poolid: 1, name: 'rt', sched: 'rtds', cpus: [1], domains: [2] },
    ]);
    expect(s.schedInfo(2)).toMatchObject({ sched: 'rtds' });
    await sleep(50);
    const { ns } = await measure(s, [1, 2], 200);
    expect(ns.get(1)).toBeGreaterThan(0);
    expect(ns.get(2)).toBeGreaterThan(0);
    expect(s.vcpuList(2)[0]!.cpu).toBe(1);
    expect(s.vcpuList(1)[0]!.cpu).toBe(0);
    expect(() => s!.cpupoolDestroy('rt')).toThrow(/EBUSY/);
    expect(() => s!.cpupoolCpuRemove('rt', 1)).toThrow(/EBUSY/);
    await s.cpupoolMigrate(2, 'Pool-0');
    s.cpupoolDestroy('rt');
    expect(s.cpupoolList().map((p) => p.name)).toEqual(['Pool-0']);
    expect(() => s!.cpupoolDestroy('Pool-0')).toThrow(/EPERM/);
  });
});
