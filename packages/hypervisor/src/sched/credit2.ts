/**
 * Credit2 (xen/common/sched/credit2.c), Xen's default scheduler.
 *
 * Every vCPU has credit (ns of max-weight time).  Running burns it faster the
 * lower the domain's weight (t2c_update: burn = ns * max_weight / weight), the
 * vCPU with the most credit runs, and when the one about to run has none
 * left everybody gets CREDIT_INIT more (reset_credit).  So over time CPU is
 * shared in proportion to weight.  A cap gives the domain a budget of
 * cap% x 10 ms every 10 ms; vCPUs without budget are parked until the next
 * replenishment (unit_grab_budget / replenish_domain_budget).  Ratelimit
 * keeps a vCPU on its pCPU for at least ratelimit_us once it started.
 *
 * Runqueues: 'all' (one per pool, what Xen's default "socket" arrangement
 * gives a single-socket host) or 'cpu' (one per pCPU); with several
 * runqueues an idle pCPU pulls work from the busiest one (balance_load).
 */
import { CREDIT2_WEIGHT_DEFAULT, CREDIT2_WEIGHT_MAX, CREDIT2_WEIGHT_MIN, SCHED_RATELIMIT_DEFAULT_US, SCHED_RATELIMIT_MAX_US, SCHED_RATELIMIT_MIN_US, XenError, type Credit2Params } from '@xenbox/abi';
import type { Decision, PcpuView, Scheduler } from './scheduler.js';
import type { SchedDomain } from './sched-domain.js';
import type { Vcpu } from './vcpu.js';

const US = 1000;
const MS = 1_000_000;
/** credit2.c: CSCHED2_CREDIT_INIT, CSCHED2_CARRYOVER_MAX (= MIN_TIMER), CSCHED2_MIN_TIMER, CSCHED2_MAX_TIMER. */
export const CREDIT_INIT = 10 * MS;
export const CARRYOVER_MAX = 500 * US;
export const MIN_TIMER = 500 * US;
export const MAX_TIMER = 10 * MS;
/** credit2.c: CSCHED2_MIGRATE_RESIST (sched_credit2_migrate_resist, 500 us). */
export const MIGRATE_RESIST = 500 * US;
/** credit2.c: CSCHED2_BDGT_REPL_PERIOD (credit2_cap_period_ms = 10). */
export const CAP_PERIOD = 10 * MS;

interface Unit {
  credit: number;
  /** Budget in hand (capped domains only; Infinity otherwise). */
  budget: number;
  rq: Runqueue;
}

interface Dom {
  weight: number;
  cap: number;
  totBudget: number;
  budget: number;
  nextRepl: number;
  parked: Set<Vcpu>;
}

class Runqueue {
  /** Runnable vCPUs not on a pCPU, most credit first (runq_insert keeps it sorted). */
  runq: Vcpu[] = [];
  constructor(readonly id: number) {}
  get load(): number {
    return this.runq.length;
  }
}

export type RunqueueArrangement = 'all' | 'cpu';

const unit = (v: Vcpu): Unit => v.priv as Unit;
const dom = (d: SchedDomain): Dom => d.priv as Dom;
const hasCap = (v: Vcpu): boolean => dom(v.dom).cap > 0;

export class Credit2 implements Scheduler {
  readonly name = 'credit2' as const;
  readonly cpus = new Set<number>();
  ratelimitNs = SCHED_RATELIMIT_DEFAULT_US * US;
  private readonly domains = new Set<SchedDomain>();
  private readonly rqs = new Map<number, Runqueue>();
  private readonly shared = new Runqueue(0);

  constructor(private readonly view: PcpuView, readonly arrangement: RunqueueArrangement = 'all') {}

  // ------------------------------------------------------------ parameters

  get ratelimitUs(): number {
    return this.ratelimitNs / US;
  }

  /** credit2.c: csched2_sys_cntl (XEN_SYSCTL_SCHEDOP_putinfo). */
  setRatelimitUs(us: number): void {
    if (us !== 0 && (!Number.isInteger(us) || us < SCHED_RATELIMIT_MIN_US || us > SCHED_RATELIMIT_MAX_US))
      throw new XenError('EINVAL', `ratelimit_us ${us} out of range (0 or ${SCHED_RATELIMIT_MIN_US}..${SCHED_RATELIMIT_MAX_US})`);
    this.ratelimitNs = us * US;
  }

  getParams(d: SchedDomain): Credit2Params {
    return { weight: dom(d).weight, cap: dom(d).cap };
  }

  /** credit2.c: csched2_dom_cntl.  weight 0 / cap undefined = unchanged; cap <= 100 * nr_vcpus. */
  setParams(d: SchedDomain, p: Partial<Credit2Params>, now: number): number[] {
    const sd = dom(d);
    if (p.weight !== undefined && p.weight !== 0) {
      if (!Number.isInteger(p.weight) || p.weight < CREDIT2_WEIGHT_MIN || p.weight > CREDIT2_WEIGHT_MAX)
        throw new XenError('EINVAL', `weight ${p.weight} out of range (${CREDIT2_WEIGHT_MIN}..${CREDIT2_WEIGHT_MAX})`);
      sd.weight = p.weight;
      d.weight = p.weight;
    }
    if (p.cap !== undefined) {
      if (!Number.isInteger(p.cap) || p.cap < 0 || p.cap > 100 * d.vcpus.length)
        throw new XenError('EINVAL', `cap ${p.cap} out of range (0..${100 * d.vcpus.length})`);
      sd.cap = p.cap;
      d.cap = p.cap;
      sd.totBudget = (CAP_PERIOD * p.cap) / 100;
      sd.budget = sd.totBudget;
      sd.nextRepl = now + CAP_PERIOD;
      for (const v of d.vcpus) unit(v).budget = p.cap > 0 ? 0 : Infinity;
      if (p.cap === 0) return this.unpark(sd, now);
    }
    return [];
  }

  // ------------------------------------------------------------ membership

  addPcpu(p: number): void {
    this.cpus.add(p);
    if (this.arrangement === 'cpu') this.rqs.set(p, new Runqueue(p));
  }

  removePcpu(p: number): void {
    this.cpus.delete(p);
    const rq = this.rqs.get(p);
    this.rqs.delete(p);
    if (rq) for (const v of rq.runq) this.enqueue(v, this.rqFor(v));
  }

  addDomain(d: SchedDomain): void {
    this.domains.add(d);
    d.priv = { weight: d.weight, cap: 0, totBudget: 0, budget: 0, nextRepl: 0, parked: new Set() } satisfies Dom;
  }

  removeDomain(d: SchedDomain): void {
    this.domains.delete(d);
  }

  insertVcpu(v: Vcpu): void {
    v.priv = { credit: CREDIT_INIT, budget: Infinity, rq: this.shared } satisfies Unit;
    unit(v).rq = this.rqFor(v);
  }

  removeVcpu(v: Vcpu): void {
    this.dequeue(v);
    dom(v.dom).parked.delete(v);
  }

  // ------------------------------------------------------------ runqueues

  private rqFor(v: Vcpu): Runqueue {
    if (this.arrangement === 'all' || this.rqs.size === 0) return this.shared;
    const own = v.lastPcpu >= 0 ? this.rqs.get(v.lastPcpu) : undefined;
    if (own && v.affinity.allows(own.id)) return own;
    const allowed = [...this.rqs.values()].filter((rq) => v.affinity.allows(rq.id));
    return allowed.sort((a, b) => a.load - b.load)[0] ?? this.shared;
  }

  /** credit2.c: runq_insert — keep the runqueue sorted by credit. */
  private enqueue(v: Vcpu, rq: Runqueue): void {
    this.dequeue(v);
    unit(v).rq = rq;
    const c = unit(v).credit;
    let i = 0;
    while (i < rq.runq.length && unit(rq.runq[i]!).credit >= c) i++;
    rq.runq.splice(i, 0, v);
  }

  private dequeue(v: Vcpu): void {
    const rq = (v.priv as Unit | undefined)?.rq;
    if (!rq) return;
    const i = rq.runq.indexOf(v);
    if (i >= 0) rq.runq.splice(i, 1);
  }

  private get allRqs(): Runqueue[] {
    return this.arrangement === 'all' ? [this.shared] : [...this.rqs.values(), this.shared];
  }

  private maxWeight(): number {
    let m = 1;
    for (const d of this.domains) m = Math.max(m, dom(d).weight);
    return m;
  }

  // ------------------------------------------------------------ events

  /** credit2.c: csched2_unit_wake + runq_tickle. */
  wake(v: Vcpu, now: number): number[] {
    if (dom(v.dom).parked.has(v)) return [];
    this.enqueue(v, this.rqFor(v));
    return this.tickle(v, now);
  }

  /** runq_tickle: an idle pCPU it may use (soft affinity first), else the one running the least credit. */
  private tickle(v: Vcpu, _now: number): number[] {
    const allowed = v.affinity.allowedOf(this.cpus);
    const idle = allowed.filter((p) => this.view.idle(p));
    const idleSoft = idle.find((p) => v.affinity.prefers(p));
    if (idleSoft !== undefined) return [idleSoft];
    if (idle.length) return [idle[0]!];
    let lowest = Infinity;
    let ipid = -1;
    for (const p of allowed) {
      const cur = this.view.current(p);
      if (!cur || cur.priv === undefined) continue;
      const c = unit(cur).credit;
      if (c < lowest) {
        lowest = c;
        ipid = p;
      }
    }
    // "Only switch to another processor if the credit difference is greater than the migrate resistance."
    return ipid >= 0 && lowest + MIGRATE_RESIST <= unit(v).credit ? [ipid] : [];
  }

  /** credit2.c: csched2_unit_sleep (+ unit_return_budget on the way off the pCPU). */
  sleep(v: Vcpu): void {
    this.dequeue(v);
    this.returnBudget(v);
  }

  /** credit2.c: burn_credits. */
  charge(v: Vcpu, ns: number, _now: number): void {
    const u = unit(v);
    u.credit -= (ns * this.maxWeight()) / dom(v.dom).weight;
    if (hasCap(v)) u.budget -= ns;
  }

  // ------------------------------------------------------------ budget (caps)

  /** credit2.c: unit_grab_budget — overrun is paid back from the domain's budget. */
  private grabBudget(v: Vcpu): boolean {
    if (!hasCap(v)) return true;
    const u = unit(v);
    if (u.budget > 0) return true;
    const sd = dom(v.dom);
    sd.budget += u.budget;
    if (sd.budget > 0) {
      const quota = Math.max(sd.totBudget / v.dom.vcpus.length, MIN_TIMER);
      u.budget = Math.min(quota, sd.budget);
      sd.budget -= u.budget;
      return true;
    }
    u.budget = 0;
    this.dequeue(v);
    sd.parked.add(v);
    return false;
  }

  private returnBudget(v: Vcpu): void {
    if (!hasCap(v)) return;
    const u = unit(v);
    if (u.budget > 0) {
      dom(v.dom).budget += u.budget;
      u.budget = 0;
    }
  }

  nextEvent(_now: number): number | undefined {
    let t: number | undefined;
    for (const d of this.domains) {
      const sd = dom(d);
      if (sd.cap > 0 && (t === undefined || sd.nextRepl < t)) t = sd.nextRepl;
    }
    return t;
  }

  /** credit2.c: replenish_domain_budget. */
  onTimer(now: number): number[] {
    const out: number[] = [];
    for (const d of this.domains) {
      const sd = dom(d);
      if (sd.cap === 0 || sd.nextRepl > now) continue;
      do {
        sd.nextRepl += CAP_PERIOD;
        sd.budget += sd.totBudget;
      } while (sd.nextRepl <= now);
      if (sd.budget <= 0) continue; // overran by more than a period: stay parked
      sd.budget = Math.min(sd.budget, sd.totBudget);
      out.push(...this.unpark(sd, now));
    }
    return out;
  }

  private unpark(sd: Dom, now: number): number[] {
    const out: number[] = [];
    for (const v of [...sd.parked]) {
      sd.parked.delete(v);
      if (v.runnable && !v.onCpu) out.push(...this.wake(v, now));
    }
    return out;
  }

  affinityChanged(v: Vcpu): number[] {
    if (!unit(v).rq.runq.includes(v)) return [];
    this.enqueue(v, this.rqFor(v));
    return this.tickle(v, 0);
  }

  // ------------------------------------------------------------ scheduling

  /** credit2.c: csched2_schedule + runq_candidate + csched2_runtime. */
  pick(p: number, now: number, prev: Vcpu | undefined, prevInflightNs = 0): Decision {
    // csched2_schedule: burn_credits(scurr, now) before choosing.
    if (prev && prevInflightNs > 0) this.charge(prev, prevInflightNs, now);
    const rq = this.arrangement === 'all' ? this.shared : (this.rqs.get(p) ?? this.shared);
    if (prev && !prev.affinity.allows(p)) {
      // Its hard affinity no longer includes p (vcpu-pin): it goes back to a runqueue where it may run.
      this.enqueue(prev, this.rqFor(prev));
      prev = undefined;
    }
    if (prev && !this.grabBudget(prev)) prev = undefined;
    // Ratelimit: a vCPU that started less than ratelimit ago keeps the pCPU (csched2_schedule).
    if (prev && !prev.yielded && this.ratelimitNs > 0 && now - prev.runStart < this.ratelimitNs) {
      return this.decide(prev, p, now, prev, this.waiting(rq, p));
    }
    let snext = prev;
    for (;;) {
      const cand = this.candidate(rq, p, snext) ?? (snext ? undefined : this.steal(p));
      if (!cand) break;
      if (!this.grabBudget(cand)) continue;
      snext = cand;
      break;
    }
    if (prev?.yielded) {
      prev.yielded = false;
      if (snext === prev) {
        const other = this.candidate(rq, p, undefined);
        if (other && this.grabBudget(other)) snext = other;
      }
    }
    if (!snext) return { vcpu: undefined, sliceNs: 0, mayExtend: false };
    if (unit(snext).credit <= 0) this.resetCredit(snext);
    if (prev && prev !== snext) {
      this.returnBudget(prev);
      this.enqueue(prev, unit(prev).rq);
    }
    this.dequeue(snext);
    return this.decide(snext, p, now, prev, this.waiting(rq, p));
  }

  /** The best runqueue vCPU for p, if it beats `than` (most credit, hard affinity, soft affinity preferred). */
  private candidate(rq: Runqueue, p: number, than: Vcpu | undefined): Vcpu | undefined {
    const floor = than ? unit(than).credit : -Infinity;
    for (const v of rq.runq) {
      if (unit(v).credit <= floor) return undefined;
      if (!v.affinity.allows(p) || v.onCpu) continue; // onCpu: still finishing a run elsewhere
      // runq_candidate: leave it for an idle pCPU of its soft affinity.
      if (!v.affinity.prefers(p) && v.affinity.allowedOf(this.cpus).some((q) => q !== p && v.affinity.prefers(q) && this.view.idle(q))) continue;
      return v;
    }
    return undefined;
  }

  /** balance_load, reduced: an idle pCPU pulls the best vCPU it may run from the busiest other runqueue. */
  private steal(p: number): Vcpu | undefined {
    if (this.arrangement === 'all') return undefined;
    const others = this.allRqs.filter((rq) => rq.id !== p).sort((a, b) => b.load - a.load);
    for (const rq of others) {
      const v = rq.runq.find((c) => c.affinity.allows(p) && !c.onCpu);
      if (v) {
        const own = this.rqs.get(p);
        if (own) this.enqueue(v, own);
        return v;
      }
    }
    return undefined;
  }

  /** The credit of whoever would run next on p after snext (swait in csched2_runtime). */
  private waiting(rq: Runqueue, p: number): number | undefined {
    const w = rq.runq.find((v) => v.affinity.allows(p));
    return w ? unit(w).credit : undefined;
  }

  private decide(snext: Vcpu, _p: number, now: number, prev: Vcpu | undefined, swaitCredit: number | undefined): Decision {
    const u = unit(snext);
    // csched2_runtime: run until snext's credit falls to the next waiter's, within [MIN_TIMER, MAX_TIMER] and ratelimit.
    let rtCredit = u.credit;
    if (swaitCredit !== undefined && swaitCredit > 0) rtCredit = u.credit - swaitCredit;
    let time = (rtCredit * dom(snext.dom).weight) / this.maxWeight();
    let minTime = MIN_TIMER;
    if (this.ratelimitNs > 0) {
      const ran = snext === prev ? now - snext.runStart : 0;
      minTime = Math.max(minTime, this.ratelimitNs - ran);
    }
    time = Math.min(Math.max(time, minTime), MAX_TIMER);
    if (hasCap(snext)) time = Math.min(time, u.budget);
    return { vcpu: snext, sliceNs: time, mayExtend: !hasCap(snext) };
  }

  /** credit2.c: reset_credit — everyone gets m * CREDIT_INIT, clipped to CREDIT_INIT + CARRYOVER_MAX. */
  private resetCredit(snext: Vcpu): void {
    let m = 1;
    const c = unit(snext).credit;
    if (c < -CREDIT_INIT) m += Math.floor(-c / CREDIT_INIT);
    for (const d of this.domains)
      for (const v of d.vcpus) {
        const u = v.priv as Unit | undefined;
        if (!u) continue;
        u.credit = Math.min(u.credit + m * CREDIT_INIT, CREDIT_INIT + CARRYOVER_MAX);
      }
    for (const rq of this.allRqs) rq.runq.sort((a, b) => unit(b).credit - unit(a).credit);
  }

  static readonly DEFAULT_WEIGHT = CREDIT2_WEIGHT_DEFAULT;
}
