/**
 * The null scheduler (xen/common/sched/null.c): each pCPU has at most one
 * vCPU assigned, permanently; it runs whenever runnable and the pCPU idles
 * otherwise.  vCPUs that find no free pCPU (within hard affinity) wait in a
 * waitqueue until one frees up (null.c: unit_assign / _vcpu_remove ->
 * waitqueue).  No time slicing: slices here are only accounting points.
 */
import type { Decision, PcpuView, Scheduler } from './scheduler.js';
import type { SchedDomain } from './sched-domain.js';
import type { Vcpu } from './vcpu.js';

/** How often a running vCPU reports (accounting, console); it is never switched out. */
const ACCOUNTING_SLICE = 10_000_000;

export class NullSched implements Scheduler {
  readonly name = 'null' as const;
  readonly cpus = new Set<number>();
  /** pCPU -> its vCPU. */
  private readonly assigned = new Map<number, Vcpu>();
  private readonly waitq: Vcpu[] = [];

  constructor(_view: PcpuView) {}

  assignmentOf(v: Vcpu): number | undefined {
    for (const [p, a] of this.assigned) if (a === v) return p;
    return undefined;
  }

  addPcpu(p: number): void {
    this.cpus.add(p);
    this.fillFromWaitq();
  }

  removePcpu(p: number): void {
    this.cpus.delete(p);
    const v = this.assigned.get(p);
    this.assigned.delete(p);
    if (v) this.assign(v);
  }

  addDomain(_d: SchedDomain): void {}
  removeDomain(_d: SchedDomain): void {}

  /** null.c: null_unit_insert — take a free pCPU of its hard affinity (soft preferred) or wait. */
  insertVcpu(v: Vcpu): void {
    this.assign(v);
  }

  private assign(v: Vcpu): number | undefined {
    const free = v.affinity.allowedOf(this.cpus).filter((p) => !this.assigned.has(p)).sort((a, b) => a - b);
    const p = free.find((q) => v.affinity.prefers(q)) ?? free[0];
    if (p === undefined) {
      if (!this.waitq.includes(v)) this.waitq.push(v);
      return undefined;
    }
    this.assigned.set(p, v);
    return p;
  }

  /** null.c: _vcpu_remove — free its pCPU and hand it to the first waiter that may use it. */
  removeVcpu(v: Vcpu): void {
    const i = this.waitq.indexOf(v);
    if (i >= 0) this.waitq.splice(i, 1);
    const p = this.assignmentOf(v);
    if (p !== undefined) this.assigned.delete(p);
    this.fillFromWaitq();
  }

  private fillFromWaitq(): void {
    for (const v of [...this.waitq]) {
      if (this.assign(v) !== undefined) this.waitq.splice(this.waitq.indexOf(v), 1);
    }
  }

  wake(v: Vcpu, _now: number): number[] {
    const p = this.assignmentOf(v);
    return p === undefined ? [] : [p];
  }

  sleep(_v: Vcpu): void {}
  charge(_v: Vcpu, _ns: number, _now: number): void {}

  pick(p: number, _now: number, _prev: Vcpu | undefined, _inflight?: number): Decision {
    const v = this.assigned.get(p);
    if (!v || !v.runnable) return { vcpu: undefined, sliceNs: 0, mayExtend: false };
    return { vcpu: v, sliceNs: ACCOUNTING_SLICE, mayExtend: true };
  }

  nextEvent(): number | undefined {
    return undefined;
  }
  onTimer(): number[] {
    return [];
  }

  /** A new hard affinity may no longer include its pCPU: reassign (null.c: null_unit_migrate). */
  affinityChanged(v: Vcpu): number[] {
    const p = this.assignmentOf(v);
    if (p !== undefined && v.affinity.allows(p)) return [];
    if (p !== undefined) this.assigned.delete(p);
    const q = this.assign(v);
    this.fillFromWaitq();
    return [...(p !== undefined ? [p] : []), ...(q !== undefined ? [q] : [])];
  }
}
