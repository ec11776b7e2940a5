/**
 * cpupools (xen/common/sched/cpupool.c): a named set of pCPUs with its own
 * scheduler instance; every domain lives in exactly one pool.  Pool-0 holds
 * all pCPUs at boot.  A pCPU belongs to at most one pool; a pool with
 * domains cannot be destroyed (EBUSY), nor lose its last pCPU while it has
 * domains (cpupool_unassign_cpu: EBUSY).
 */
import { XenError, type SchedulerName } from '@xenbox/abi';
import type { PcpuView, Scheduler } from './scheduler.js';
import type { SchedDomain } from './sched-domain.js';
import { Credit2, type RunqueueArrangement } from './credit2.js';
import { Rtds } from './rtds.js';
import { NullSched } from './null.js';

export function createScheduler(name: SchedulerName, view: PcpuView, credit2Runqueue: RunqueueArrangement = 'all'): Scheduler {
  switch (name) {
    case 'credit2': return new Credit2(view, credit2Runqueue);
    case 'rtds': return new Rtds(view);
    case 'null': return new NullSched(view);
  }
}

export class Cpupool {
  readonly domains = new Set<SchedDomain>();
  constructor(readonly poolid: number, public name: string, readonly sched: Scheduler) {}
  get cpus(): number[] {
    return [...this.sched.cpus].sort((a, b) => a - b);
  }
}

export class CpupoolRegistry {
  readonly pools = new Map<string, Cpupool>();

  constructor(
    private readonly view: PcpuView,
    readonly nrPcpus: number,
    /** Xen's `credit2_runqueue=` boot option, for every credit2 pool. */
    readonly credit2Runqueue: RunqueueArrangement = 'all',
  ) {}

  /** cpupool_create. */
  create(name: string, sched: SchedulerName): Cpupool {
    if (!/^[\w.-]{1,64}$/.test(name)) throw new XenError('EINVAL', `bad cpupool name '${name}'`);
    if (this.pools.has(name)) throw new XenError('EEXIST', `cpupool ${name} exists`);
    const pool = new Cpupool(this.freePoolId(), name, createScheduler(sched, this.view, this.credit2Runqueue));
    this.pools.set(name, pool);
    return pool;
  }

  /** cpupool.c: CPUPOOLID_NONE asks for the first free id. */
  private freePoolId(): number {
    const used = new Set([...this.pools.values()].map((p) => p.poolid));
    let id = 0;
    while (used.has(id)) id++;
    return id;
  }

  get(name: string): Cpupool {
    const p = this.pools.get(name);
    if (!p) throw new XenError('ENOENT', `no cpupool '${name}'`);
    return p;
  }

  poolOfCpu(pcpu: number): Cpupool | undefined {
    for (const p of this.pools.values()) if (p.sched.cpus.has(pcpu)) return p;
    return undefined;
  }

  destroy(name: string): void {
    const p = this.get(name);
    if (p.poolid === 0) throw new XenError('EPERM', 'Pool-0 cannot be destroyed');
    if (p.domains.size) throw new XenError('EBUSY', `cpupool ${name} still has ${p.domains.size} domain(s)`);
    for (const c of p.cpus) p.sched.removePcpu(c);
    this.pools.delete(name);
  }

  rename(name: string, newName: string): void {
    const p = this.get(name);
    if (this.pools.has(newName)) throw new XenError('EEXIST', `cpupool ${newName} exists`);
    this.pools.delete(name);
    p.name = newName;
    this.pools.set(newName, p);
  }

  checkCpu(pcpu: number): void {
    if (!Number.isInteger(pcpu) || pcpu < 0 || pcpu >= this.nrPcpus) throw new XenError('EINVAL', `no pCPU ${pcpu} (have ${this.nrPcpus})`);
  }

  /** cpupool_assign_cpu_locked: only a free pCPU (in no pool) can be added. */
  addCpu(name: string, pcpu: number): Cpupool {
    this.checkCpu(pcpu);
    const p = this.get(name);
    const owner = this.poolOfCpu(pcpu);
    if (owner === p) return p;
    if (owner) throw new XenError('EBUSY', `pCPU ${pcpu} belongs to cpupool ${owner.name}; remove it there first`);
    p.sched.addPcpu(pcpu);
    return p;
  }

  /** cpupool_unassign_cpu. */
  removeCpu(name: string, pcpu: number): Cpupool {
    this.checkCpu(pcpu);
    const p = this.get(name);
    if (!p.sched.cpus.has(pcpu)) throw new XenError('EINVAL', `pCPU ${pcpu} is not in cpupool ${name}`);
    if (p.sched.cpus.size === 1 && p.domains.size) throw new XenError('EBUSY', `cpupool ${name} would have no pCPU left for its domains`);
    p.sched.removePcpu(pcpu);
    return p;
  }
}
