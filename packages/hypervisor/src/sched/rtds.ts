/**
 * RTDS (xen/common/sched/rt.c): global EDF over the pool's pCPUs with
 * deferrable servers.  Each vCPU has (period, budget); at every period
 * boundary its deadline moves one period on and its budget is refilled
 * (rt_update_deadline); budget is only consumed while running, and what is
 * left at the boundary is lost.  The runnable vCPU with budget and the
 * earliest deadline runs.  A vCPU that used its budget waits for the next
 * period, unless it has extratime, in which case it may run in otherwise idle
 * time at a lower priority level (rt.c: priority_level).
 */
import { RTDS_BUDGET_DEFAULT_US, RTDS_MIN_US, RTDS_PERIOD_DEFAULT_US, XenError, type RtdsVcpuParams } from '@xenbox/abi';
import type { Decision, PcpuView, Scheduler } from './scheduler.js';
import type { SchedDomain } from './sched-domain.js';
import type { Vcpu } from './vcpu.js';

const US = 1000;
/** Slice given to a vCPU running on extratime (rt.c: it runs until the next scheduling event; bound it). */
const EXTRATIME_SLICE = 1_000_000;

interface RtUnit {
  period: number;
  budget: number;
  extratime: boolean;
  curDeadline: number;
  curBudget: number;
  /** rt.c: priority_level — 0 with budget, +1 each time extratime refills it within a period. */
  level: number;
}

const rt = (v: Vcpu): RtUnit => v.priv as RtUnit;

export class Rtds implements Scheduler {
  readonly name = 'rtds' as const;
  readonly cpus = new Set<number>();
  private readonly vcpus = new Set<Vcpu>();
  private readonly runq = new Set<Vcpu>();

  constructor(private readonly view: PcpuView) {}

  addPcpu(p: number): void {
    this.cpus.add(p);
  }
  removePcpu(p: number): void {
    this.cpus.delete(p);
  }
  addDomain(_d: SchedDomain): void {}
  removeDomain(_d: SchedDomain): void {}

  insertVcpu(v: Vcpu): void {
    v.priv = {
      period: RTDS_PERIOD_DEFAULT_US * US, budget: RTDS_BUDGET_DEFAULT_US * US, extratime: true,
      curDeadline: 0, curBudget: 0, level: 0,
    } satisfies RtUnit;
    this.vcpus.add(v);
  }

  removeVcpu(v: Vcpu): void {
    this.vcpus.delete(v);
    this.runq.delete(v);
  }

  getParams(v: Vcpu): RtdsVcpuParams {
    const u = rt(v);
    return { vcpu: v.id, period: u.period / US, budget: u.budget / US, extratime: u.extratime };
  }

  /** rt.c: rt_dom_cntl XEN_DOMCTL_SCHEDOP_putvcpuinfo — period/budget in us, budget <= period, both >= 10 us. */
  setParams(v: Vcpu, p: Partial<RtdsVcpuParams>, now: number): void {
    const u = rt(v);
    const period = p.period ?? u.period / US;
    const budget = p.budget ?? u.budget / US;
    if (!Number.isInteger(period) || !Number.isInteger(budget) || period < RTDS_MIN_US || budget < RTDS_MIN_US || budget > period)
      throw new XenError('EINVAL', `rtds period ${period} us / budget ${budget} us: need ${RTDS_MIN_US} <= budget <= period`);
    u.period = period * US;
    u.budget = budget * US;
    if (p.extratime !== undefined) u.extratime = p.extratime;
    // rt.c: a parameter change starts a fresh period.
    u.curDeadline = now + u.period;
    u.curBudget = u.budget;
    u.level = 0;
  }

  /** rt.c: rt_update_deadline — catch up whole periods, refill the budget. */
  private replenish(v: Vcpu, now: number): void {
    const u = rt(v);
    if (now < u.curDeadline) return;
    const missed = Math.floor((now - u.curDeadline) / u.period) + 1;
    u.curDeadline += missed * u.period;
    u.curBudget = u.budget;
    u.level = 0;
  }

  wake(v: Vcpu, now: number): number[] {
    this.replenish(v, now);
    this.runq.add(v);
    return this.tickle(v);
  }

  /** rt.c: runq_tickle — an idle pCPU, else the one running the lowest-priority vCPU if v beats it. */
  private tickle(v: Vcpu): number[] {
    const allowed = v.affinity.allowedOf(this.cpus);
    const idle = allowed.find((p) => this.view.idle(p));
    if (idle !== undefined) return [idle];
    let worst: { p: number; v: Vcpu } | undefined;
    for (const p of allowed) {
      const cur = this.view.current(p);
      if (!cur || !this.vcpus.has(cur)) continue;
      if (!worst || this.before(worst.v, cur)) worst = { p, v: cur };
    }
    return worst && this.before(v, worst.v) ? [worst.p] : [];
  }

  /** EDF order: lower priority level first, then earlier deadline; depleted without extratime never runs. */
  private before(a: Vcpu, b: Vcpu): boolean {
    const ua = rt(a), ub = rt(b);
    if (ua.level !== ub.level) return ua.level < ub.level;
    return ua.curDeadline < ub.curDeadline;
  }

  sleep(v: Vcpu): void {
    this.runq.delete(v);
  }

  /** rt.c: burn_budget — extratime vCPUs drop a priority level and get a fresh budget. */
  charge(v: Vcpu, ns: number, _now: number): void {
    const u = rt(v);
    u.curBudget -= ns;
    if (u.curBudget <= 0) {
      if (u.extratime) {
        u.level++;
        u.curBudget = u.budget;
      } else u.curBudget = 0;
    }
  }

  private eligible(v: Vcpu, p: number, now: number): boolean {
    this.replenish(v, now);
    return v.affinity.allows(p) && rt(v).curBudget > 0;
  }

  pick(p: number, now: number, prev: Vcpu | undefined, prevInflightNs = 0): Decision {
    if (prev) {
      this.runq.add(prev);
      // rt_schedule burns the running vCPU's budget up to now before choosing (burn_budget).
      if (prevInflightNs > 0) this.charge(prev, prevInflightNs, now);
    }
    let best: Vcpu | undefined;
    for (const v of this.runq) {
      if (v.onCpu && v !== prev) continue; // still finishing a run on another pCPU
      if (this.eligible(v, p, now) && (!best || this.before(v, best))) best = v;
    }
    if (!best) return { vcpu: undefined, sliceNs: 0, mayExtend: false };
    this.runq.delete(best);
    const u = rt(best);
    // Run until the budget is used or the period ends, whichever is first; extratime at most a bounded slice.
    let slice = Math.min(u.curBudget, u.curDeadline - now);
    if (u.level > 0) slice = Math.min(slice, EXTRATIME_SLICE);
    const next = this.nextEvent(now);
    if (next !== undefined) slice = Math.min(slice, Math.max(next - now, 10 * US));
    return { vcpu: best, sliceNs: Math.max(slice, 10 * US), mayExtend: false };
  }

  /** The earliest period boundary of a waiting vCPU (rt.c: the replenishment timer). */
  nextEvent(now: number): number | undefined {
    let t: number | undefined;
    for (const v of this.vcpus) {
      if (!v.runnable) continue;
      const d = rt(v).curDeadline;
      if (d > now && (t === undefined || d < t)) t = d;
    }
    return t;
  }

  /** rt.c: repl_timer_handler — refill and tickle where a replenished vCPU now beats the running one. */
  onTimer(now: number): number[] {
    const out = new Set<number>();
    for (const v of this.runq) {
      const before = rt(v).curDeadline;
      this.replenish(v, now);
      if (rt(v).curDeadline !== before) for (const p of this.tickle(v)) out.add(p);
    }
    for (const p of this.cpus) {
      const cur = this.view.current(p);
      if (cur && this.vcpus.has(cur) && now >= rt(cur).curDeadline) out.add(p);
    }
    return [...out];
  }

  affinityChanged(v: Vcpu): number[] {
    return this.runq.has(v) ? this.tickle(v) : [];
  }
}
