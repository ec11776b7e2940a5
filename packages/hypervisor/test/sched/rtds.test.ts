import { afterEach, describe, expect, it } from 'vitest';
import { VcpuScheduler } from '../../dist/sched/index.js';
import { addGuest, busyLoop, measure, noHooks, sleep } from './guests.js';

let s: VcpuScheduler | undefined;
afterEach(async () => {
  await s?.destroy();
  s = undefined;
});

describe('rtds on one pCPU', () => {
  it('gives a vCPU with budget 2 ms every 10 ms (no extratime) 20 % of the pCPU while another vCPU soaks up the rest', async () => {
    s = await VcpuScheduler.create({ pcpus: 1, scheduler: 'rtds', hooks: noHooks });
    addGuest(s, 1, busyLoop);
    addGuest(s, 2, busyLoop);
    s.setRtds(1, 'all', { period: 10_000, budget: 2_000, extratime: false });
    expect(s.getRtds(1)).toEqual([{ vcpu: 0, period: 10_000, budget: 2_000, extratime: false }]);
    expect(s.getRtds(2)).toEqual([{ vcpu: 0, period: 10_000, budget: 4_000, extratime: true }]);
    await sleep(100);
    const { ns, wallNs } = await measure(s, [1, 2], 2000);
    const pct = (100 * ns.get(1)!) / wallNs;
    console.log(`rtds 2 ms / 10 ms: ${pct.toFixed(1)} % of a pCPU (other vCPU: ${((100 * ns.get(2)!) / wallNs).toFixed(1)} %)`);
    expect(pct).toBeGreaterThan(17);
    expect(pct).toBeLessThan(23);
    expect(ns.get(2)!).toBeGreaterThan(ns.get(1)!);
  });

  it('rejects a budget larger than the period, and params below 10 us, with EINVAL', async () => {
    s = await VcpuScheduler.create({ pcpus: 1, scheduler: 'rtds', hooks: noHooks });
    addGuest(s, 1, busyLoop);
    expect(() => s!.setRtds(1, 0, { period: 1000, budget: 2000 })).toThrow(/EINVAL/);
    expect(() => s!.setRtds(1, 0, { period: 5, budget: 5 })).toThrow(/EINVAL/);
    expect(() => s!.setCredit2(1, { weight: 10 })).toThrow(/EINVAL.*rtds/);
    expect(s.schedInfo(1)).toEqual({ sched: 'rtds', vcpus: [{ vcpu: 0, period: 10_000, budget: 4_000, extratime: true }] });
  });
});
