/**
 * Credit2's bookkeeping on its own, without pCPU threads: the same arithmetic
 * credit2.c does (t2c_update, reset_credit, unit_grab_budget,
 * replenish_domain_budget), driven by hand.
 */
import { describe, expect, it } from 'vitest';
import { Credit2, CAP_PERIOD, CARRYOVER_MAX, CREDIT_INIT } from '../../dist/sched/credit2.js';
import { SchedDomain } from '../../dist/sched/sched-domain.js';
import { Vcpu } from '../../dist/sched/vcpu.js';
import { VcpuState } from '../../dist/arch/riscv/vcpu-state.js';
import type { Cpupool } from '../../dist/sched/cpupool.js';
import type { Plic } from '../../dist/arch/riscv/plic.js';
import type { DomainDescriptor } from '../../dist/sched/slice-protocol.js';

const MS = 1e6;
const idleView = { current: () => undefined, idle: () => false };

function setup(weights: number[]): { c2: Credit2; vcpus: Vcpu[]; doms: SchedDomain[] } {
  const c2 = new Credit2(idleView);
  c2.addPcpu(0);
  const doms = weights.map((w, i) => new SchedDomain(i + 1, {} as DomainDescriptor, {} as Plic, {} as Cpupool, w, 0));
  const vcpus = doms.map((d) => {
    const v = new Vcpu(d, 0, VcpuState.create(0));
    d.vcpus = [v];
    c2.addDomain(d);
    c2.insertVcpu(v);
    c2.setParams(d, { weight: d.weight }, 0);
    return v;
  });
  return { c2, vcpus, doms };
}

const credit = (v: Vcpu): number => (v.priv as { credit: number }).credit;

describe('credit2 accounting', () => {
  it('burns credit in proportion to max_weight / weight', () => {
    const { c2, vcpus } = setup([256, 512]);
    c2.charge(vcpus[0]!, 1 * MS, 0);
    c2.charge(vcpus[1]!, 1 * MS, 0);
    expect(CREDIT_INIT - credit(vcpus[0]!)).toBe(2 * MS);
    expect(CREDIT_INIT - credit(vcpus[1]!)).toBe(1 * MS);
  });

  it('resets everybody when the vCPU picked has no credit left, clipping at CREDIT_INIT + CARRYOVER_MAX', () => {
    const { c2, vcpus } = setup([256, 256]);
    c2.charge(vcpus[0]!, 11 * MS, 0); // -1 ms
    c2.charge(vcpus[1]!, 10.2 * MS, 0); // -0.2 ms
    for (const v of vcpus) c2.wake(v, 0);
    const d = c2.pick(0, 0, undefined);
    expect(d.vcpu).toBe(vcpus[1]);
    expect(credit(vcpus[1]!)).toBeCloseTo(CREDIT_INIT - 0.2 * MS);
    expect(credit(vcpus[0]!)).toBeCloseTo(CREDIT_INIT - 1 * MS);
    // vCPU 0 blocks far in the black; vCPU 1 runs out: at the reset vCPU 0 is clipped, not carried over.
    c2.sleep(vcpus[0]!);
    c2.charge(vcpus[0]!, -20 * MS, 0);
    c2.charge(vcpus[1]!, 10 * MS, 0);
    expect(c2.pick(0, 20 * MS, vcpus[1]).vcpu).toBe(vcpus[1]);
    expect(credit(vcpus[0]!)).toBe(CREDIT_INIT + CARRYOVER_MAX);
    expect(credit(vcpus[1]!)).toBeCloseTo(CREDIT_INIT - 0.2 * MS);
  });

  it('parks a capped vCPU without budget and pays overrun back from the next period', () => {
    const { c2, vcpus, doms } = setup([256]);
    c2.setParams(doms[0]!, { cap: 25 }, 0); // 2.5 ms per 10 ms
    c2.wake(vcpus[0]!, 0);
    const first = c2.pick(0, 0, undefined);
    expect(first.vcpu).toBe(vcpus[0]);
    expect(first.sliceNs).toBe(2.5 * MS);
    expect(first.mayExtend).toBe(false);
    c2.charge(vcpus[0]!, 3 * MS, 0); // overran by 0.5 ms
    expect(c2.pick(0, 3 * MS, vcpus[0]).vcpu).toBeUndefined(); // parked
    expect(c2.nextEvent(0)).toBe(CAP_PERIOD);
    c2.onTimer(CAP_PERIOD);
    const next = c2.pick(0, CAP_PERIOD, undefined);
    expect(next.vcpu).toBe(vcpus[0]);
    expect(next.sliceNs).toBe(2 * MS); // 2.5 ms minus the 0.5 ms overrun
  });
});
