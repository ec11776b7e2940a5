/**
 * Hard and soft affinity (xl.cfg `cpus=`, `cpus_soft=`, `xl vcpu-pin`;
 * xen/common/sched/core.c: sched_set_affinity).  Hard affinity is where a
 * vCPU may run; soft affinity is where it prefers to run.  Every scheduler
 * asks these helpers, so all of them honour both.
 */
import { XenError, type CpuList } from '@xenbox/abi';

export class Affinity {
  /** undefined = all pCPUs. */
  hard: Set<number> | undefined;
  soft: Set<number> | undefined;

  constructor(hard?: CpuList, soft?: CpuList) {
    this.hard = toSet(hard);
    this.soft = toSet(soft);
  }

  allows(pcpu: number): boolean {
    return this.hard === undefined || this.hard.has(pcpu);
  }

  /** Soft affinity counts only where it overlaps the hard one (core.c: has_soft_affinity). */
  prefers(pcpu: number): boolean {
    return this.allows(pcpu) && (this.soft === undefined || this.soft.has(pcpu));
  }

  /** The pCPUs of `cpus` this vCPU may use. */
  allowedOf(cpus: Iterable<number>): number[] {
    return [...cpus].filter((p) => this.allows(p));
  }

  hardList(all: readonly number[]): number[] {
    return this.hard ? [...this.hard].sort((a, b) => a - b) : [...all];
  }

  softList(all: readonly number[]): number[] {
    return this.soft ? [...this.soft].sort((a, b) => a - b) : [...all];
  }
}

function toSet(l: CpuList | undefined): Set<number> | undefined {
  if (l === undefined || l === 'all') return undefined;
  for (const p of l) if (!Number.isInteger(p) || p < 0) throw new XenError('EINVAL', `bad pCPU number ${p} in affinity`);
  return new Set(l);
}

/**
 * A new hard affinity must leave the vCPU somewhere to run in its pool
 * (core.c: vcpu_set_hard_affinity returns -EINVAL for an empty intersection).
 */
export function checkHardAffinity(hard: CpuList, poolCpus: readonly number[]): void {
  if (hard === 'all') return;
  if (!poolCpus.some((p) => hard.includes(p)))
    throw new XenError('EINVAL', `hard affinity ${JSON.stringify(hard)} has no pCPU of the vCPU's cpupool (${poolCpus.join(',')})`);
}
