import { afterEach, describe, expect, it } from 'vitest';
import { VcpuScheduler } from '../../dist/sched/index.js';
import { addGuest, busyLoop, noHooks, sleep } from './guests.js';

let s: VcpuScheduler | undefined;
afterEach(async () => {
  await s?.destroy();
  s = undefined;
});

describe('affinity', () => {
  it('keeps a vCPU pinned to pCPU 1 there (vcpu-list shows it), whoever else competes', async () => {
    s = await VcpuScheduler.create({ pcpus: 2, hooks: noHooks });
    addGuest(s, 1, busyLoop);
    addGuest(s, 2, busyLoop);
    addGuest(s, 3, busyLoop);
    s.setAffinity(1, 0, { hard: [1] });
    // It moves at its next scheduling point; from then on it never leaves pCPU 1.
    for (let i = 0; i < 100 && s.vcpuList(1)[0]!.cpu !== 1; i++) await sleep(10);
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const v = s.vcpuList(1)[0]!;
      if (v.state === 'running') seen.add(v.cpu);
      expect(v.cpu).toBe(1);
      await sleep(10);
    }
    expect(seen).toEqual(new Set([1]));
    expect(s.vcpuList(1)[0]).toMatchObject({ hard: [1], soft: [0, 1] });
    expect(s.vcpuList(1)[0]!.cpuTimeNs).toBeGreaterThan(0);
  });

  it('rejects a hard affinity with no pCPU of the pool (EINVAL)', async () => {
    s = await VcpuScheduler.create({ pcpus: 2, hooks: noHooks });
    addGuest(s, 1, busyLoop);
    expect(() => s!.setAffinity(1, 0, { hard: [5] })).toThrow(/EINVAL/);
  });

  it('honours cpus= at domain creation under every scheduler', async () => {
    for (const scheduler of ['credit2', 'rtds', 'null'] as const) {
      s = await VcpuScheduler.create({ pcpus: 2, scheduler, hooks: noHooks });
      addGuest(s, 1, busyLoop, { cpus: [1] });
      await sleep(60);
      const v = s.vcpuList(1)[0]!;
      expect(v.cpu, scheduler).toBe(1);
      expect(v.cpuTimeNs, scheduler).toBeGreaterThan(0);
      await s.destroy();
      s = undefined;
    }
  });
});
