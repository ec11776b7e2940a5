import { afterEach, describe, expect, it } from 'vitest';
import { VcpuScheduler } from '../../dist/sched/index.js';
import { addGuest, busyLoop, measure, noHooks, sleep } from './guests.js';

let s: VcpuScheduler | undefined;
afterEach(async () => {
  await s?.destroy();
  s = undefined;
});

describe('null scheduler', () => {
  it('gives each vCPU its own pCPU for good, and makes a vCPU without one wait until a pCPU frees up', async () => {
    s = await VcpuScheduler.create({ pcpus: 2, scheduler: 'null', hooks: noHooks });
    addGuest(s, 1, busyLoop);
    addGuest(s, 2, busyLoop);
    addGuest(s, 3, busyLoop);
    await sleep(100);
    const cpus = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const l = s.vcpuList();
      cpus.add(l.map((v) => `${v.domid}:${v.cpu}`).join(' '));
      await sleep(50);
    }
    // Always the same placement: dom1 on pCPU 0, dom2 on pCPU 1, dom3 waiting, never run.
    expect([...cpus]).toEqual(['1:0 2:1 3:-1']);
    const { ns, wallNs } = await measure(s, [1, 2, 3], 500);
    console.log(`null: dom1 ${((100 * ns.get(1)!) / wallNs).toFixed(1)} %, dom2 ${((100 * ns.get(2)!) / wallNs).toFixed(1)} %, dom3 ${ns.get(3)} ns`);
    expect(ns.get(1)! / wallNs).toBeGreaterThan(0.6);
    expect(ns.get(2)! / wallNs).toBeGreaterThan(0.6);
    expect(ns.get(3)).toBe(0);
    expect(s.vcpuList(3)[0]!.state).toBe('runnable');
    await s.removeDomain(1);
    await sleep(100);
    expect(s.vcpuList(3)[0]).toMatchObject({ cpu: 0, state: 'running' });
    expect(s.vcpuList(3)[0]!.cpuTimeNs).toBeGreaterThan(0);
  });
});
