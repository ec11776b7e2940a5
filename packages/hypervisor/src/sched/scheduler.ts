/**
 * What every scheduler implements (xen/common/sched/private.h: struct
 * scheduler, trimmed to what xenbox needs).  A scheduler instance belongs to
 * one cpupool and sees only that pool's pCPUs and vCPUs.  Times are ns.
 *
 * The dispatcher (vcpu-scheduler.ts) owns the vCPU states and the pCPUs; it
 * calls the scheduler when something changes and asks it what a pCPU should
 * run next.  Calls that return pCPU numbers ask the dispatcher to
 * reschedule those pCPUs (Xen: tickle = raise SCHEDULE_SOFTIRQ there).
 */
import type { SchedulerName } from '@xenbox/abi';
import type { Vcpu } from './vcpu.js';
import type { SchedDomain } from './sched-domain.js';

export interface Decision {
  vcpu: Vcpu | undefined;
  /** How long it may run before the scheduler wants to decide again. */
  sliceNs: number;
  /** May the worker keep running it past sliceNs until preempted (no cap or real-time budget at stake)? */
  mayExtend: boolean;
}

/** What a scheduler knows of the pCPUs (supplied by the dispatcher). */
export interface PcpuView {
  /** The vCPU a pCPU runs or is about to run, if any. */
  current(pcpu: number): Vcpu | undefined;
  idle(pcpu: number): boolean;
}

export interface Scheduler {
  readonly name: SchedulerName;
  /** pCPUs of the pool. */
  readonly cpus: Set<number>;
  addPcpu(pcpu: number): void;
  removePcpu(pcpu: number): void;
  addDomain(d: SchedDomain): void;
  removeDomain(d: SchedDomain): void;
  /** A vCPU joins (its domain was added or moved here); it is not runnable yet. */
  insertVcpu(v: Vcpu): void;
  removeVcpu(v: Vcpu): void;
  /** v became runnable (Xen: wake). Returns pCPUs to reschedule. */
  wake(v: Vcpu, now: number): number[];
  /** v stopped being runnable while off-CPU (Xen: sleep). */
  sleep(v: Vcpu): void;
  /** v ran for ns (measured); charge it (Xen: burn_credits / burn_budget). */
  charge(v: Vcpu, ns: number, now: number): void;
  /**
   * What pCPU p runs next.  `prev` is the vCPU that was just running there
   * and is still runnable (it is not on any queue); if not chosen the
   * scheduler queues it again.  The chosen vCPU leaves the queue.
   * `prevInflightNs`: how long prev has been running since its last report
   * (not charged yet); budgets must count it (Xen burns credit at schedule time).
   */
  pick(p: number, now: number, prev: Vcpu | undefined, prevInflightNs?: number): Decision;
  /** When the scheduler next needs a timer (replenishments), or undefined. */
  nextEvent(now: number): number | undefined;
  /** The timer fired: do replenishments; returns pCPUs to reschedule. */
  onTimer(now: number): number[];
  /** Affinity of v changed: requeue it where it may run now. */
  affinityChanged(v: Vcpu): number[];
}
