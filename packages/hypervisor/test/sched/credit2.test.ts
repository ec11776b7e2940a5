import { afterEach, describe, expect, it } from 'vitest';
import { VcpuScheduler } from '../../dist/sched/index.js';
import { addGuest, busyLoop, measure, noHooks, shares, sleep } from './guests.js';

let s: VcpuScheduler | undefined;
afterEach(async () => {
  await s?.destroy();
  s = undefined;
});

describe('credit2 on one pCPU', () => {
  it('gives a domain with weight 512 twice the CPU of each of two with 256 (25/50/25 %)', async () => {
    s = await VcpuScheduler.create({ pcpus: 1, hooks: noHooks });
    addGuest(s, 1, busyLoop);
    addGuest(s, 2, busyLoop, { weight: 512 });
    addGuest(s, 3, busyLoop);
    await sleep(200);
    const { ns } = await measure(s, [1, 2, 3], 2000);
    const pct = shares(ns);
    console.log(`credit2 weights 256/512/256: ${[...pct.values()].map((p) => p.toFixed(1)).join(" / ")} %`);
    expect(pct.get(1)).toBeGreaterThan(20);
    expect(pct.get(1)).toBeLessThan(30);
    expect(pct.get(2)).toBeGreaterThan(45);
    expect(pct.get(2)).toBeLessThan(55);
    expect(pct.get(3)).toBeGreaterThan(20);
    expect(pct.get(3)).toBeLessThan(30);
    expect(s.getCredit2(2)).toEqual({ weight: 512, cap: 0 });
  });

  it('holds a busy domain with cap 25 at no more than 25 % of a pCPU, even with the pCPU otherwise idle', async () => {
    s = await VcpuScheduler.create({ pcpus: 1, hooks: noHooks });
    addGuest(s, 1, busyLoop, { cap: 25 });
    await sleep(100);
    const { ns, wallNs } = await measure(s, [1], 1500);
    const pct = (100 * ns.get(1)!) / wallNs;
    console.log(`credit2 cap 25: ${pct.toFixed(1)} % of a pCPU`);
    expect(pct).toBeLessThanOrEqual(27);
    expect(pct).toBeGreaterThan(15);
  });

  it('rejects weights and caps outside Xen\'s ranges with EINVAL', async () => {
    s = await VcpuScheduler.create({ pcpus: 1, hooks: noHooks });
    addGuest(s, 1, busyLoop);
    expect(() => s!.setCredit2(1, { weight: 70000 })).toThrow(/EINVAL/);
    expect(() => s!.setCredit2(1, { cap: 101 })).toThrow(/EINVAL/);
    s.setCredit2(1, { weight: 0, cap: 50 }); // weight 0 = unchanged
    expect(s.getCredit2(1)).toEqual({ weight: 256, cap: 50 });
    expect(s.poolParams('Pool-0')).toEqual({ sched: 'credit2', ratelimit_us: 1000 });
    expect(() => s!.poolParams('Pool-0', { ratelimit_us: 50 })).toThrow(/EINVAL/);
  });
});

describe('credit2 with a runqueue per pCPU', () => {
  it('balances four busy domains over two pCPUs: each gets about half a pCPU', async () => {
    s = await VcpuScheduler.create({ pcpus: 2, credit2Runqueue: 'cpu', hooks: noHooks });
    for (const d of [1, 2, 3, 4]) addGuest(s, d, busyLoop);
    await sleep(200);
    const { ns } = await measure(s, [1, 2, 3, 4], 1000);
    const pct = shares(ns);
    console.log(`credit2 per-pCPU runqueues, 4 domains on 2 pCPUs: ${[...pct.values()].map((p) => p.toFixed(1)).join(' / ')} % of the guest time`);
    // Two per runqueue; each pCPU thread gets what the OS gives it, so allow for a loaded machine.
    for (const d of [1, 2, 3, 4]) {
      expect(pct.get(d)).toBeGreaterThan(10);
      expect(pct.get(d)).toBeLessThan(40);
    }
    expect(new Set(s.vcpuList().map((v) => v.cpu))).toEqual(new Set([0, 1]));
  });
});
