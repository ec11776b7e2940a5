/**
 * vCPU scheduling: the operations the toolstack calls (`xl sched-credit2`,
 * `xl sched-rtds`, `xl vcpu-list`, `xl vcpu-pin`, `xl vcpu-set`,
 * `xl cpupool-*`) with xl's names and units, after
 * xen/include/public/domctl.h (XEN_DOMCTL_scheduler_op, XEN_DOMCTL_setvcpuaffinity,
 * XEN_DOMCTL_getvcpuinfo) and sysctl.h (XEN_SYSCTL_cpupool_op,
 * XEN_SYSCTL_scheduler_op).  Defaults and ranges: xen/common/sched/credit2.c,
 * rt.c, null.c and reference/xen-protocols.md §7.
 */
import type { DomId } from './domid.js';

/** Schedulers a cpupool can run (XEN_SCHEDULER_*; credit2 is Xen's default). */
export const SCHEDULERS = ['credit2', 'rtds', 'null'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];
export const DEFAULT_SCHEDULER: SchedulerName = 'credit2';

/** credit2.c: CSCHED2_DEFAULT_WEIGHT; xl accepts 1..65535; 0 in a set op = unchanged. */
export const CREDIT2_WEIGHT_DEFAULT = 256;
export const CREDIT2_WEIGHT_MIN = 1;
export const CREDIT2_WEIGHT_MAX = 65535;
/** sched_ratelimit_us: default 1000 us, valid 100..500000, 0 disables (xen/include/xen/sched-if.h). */
export const SCHED_RATELIMIT_DEFAULT_US = 1000;
export const SCHED_RATELIMIT_MIN_US = 100;
export const SCHED_RATELIMIT_MAX_US = 500_000;
/** rt.c: RTDS_DEFAULT_PERIOD / RTDS_DEFAULT_BUDGET (us), RTDS_MIN_PERIOD / RTDS_MIN_BUDGET. */
export const RTDS_PERIOD_DEFAULT_US = 10_000;
export const RTDS_BUDGET_DEFAULT_US = 4_000;
export const RTDS_MIN_US = 10;

/** Per-domain credit2 parameters (xen_domctl_sched_credit2): weight, cap in % of one pCPU (0 = none). */
export interface Credit2Params {
  weight: number;
  cap: number;
}

/** Per-vCPU RTDS parameters (xen_domctl_schedparam_vcpu), microseconds. */
export interface RtdsVcpuParams {
  vcpu: number;
  period: number;
  budget: number;
  /** XEN_DOMCTL_SCHEDRT_extra: run in idle time once the budget is used (default on). */
  extratime: boolean;
}

/** Per-pool scheduler parameters (xen_sysctl_credit2_schedule). */
export interface PoolSchedParams {
  ratelimit_us: number;
}

/** Xen's runstate of a vCPU as xl vcpu-list reports it (plus 'paused' and 'offline' for clarity). */
export const VCPU_STATES = ['running', 'runnable', 'blocked', 'offline', 'paused'] as const;
export type VcpuRunState = (typeof VCPU_STATES)[number];

/** One row of `xl vcpu-list` (xc_vcpuinfo_t + the two affinity bitmaps). */
export interface VcpuInfo {
  domid: DomId;
  vcpu: number;
  online: boolean;
  state: VcpuRunState;
  /** The pCPU it runs on, or last ran on; -1 if never. */
  cpu: number;
  /** Accounted run time in nanoseconds (cpu_time). */
  cpuTimeNs: number;
  /** Hard and soft affinity as pCPU lists. */
  hard: number[];
  soft: number[];
}

/** Per-domain CPU use (what `xl top` / xentop shows in CPU(sec), CPU(%), VCPUS). */
export interface DomainCpuInfo {
  domid: DomId;
  cpuTimeNs: number;
  vcpus: number;
  vcpusOnline: number;
  pool: string;
  contextSwitches: number;
}

/** One cpupool (`xl cpupool-list [-c]`). */
export interface CpupoolInfo {
  poolid: number;
  name: string;
  sched: SchedulerName;
  cpus: number[];
  domains: DomId[];
}

/** Hard/soft affinity as xl takes it (`cpus=`, `cpus_soft=`, `vcpu-pin`): a pCPU list or "all". */
export type CpuList = number[] | 'all';

/**
 * The scheduling hypercalls, merged into the hypervisor's op table by the
 * hypervisor core.  All are dom0-only (XSM_PRIV / XSM_HOOK in Xen).
 *
 * | op                                   | xl                                  | Xen                                   |
 * |--------------------------------------|-------------------------------------|---------------------------------------|
 * | domctl.scheduler_op.getinfo          | sched-credit2 -d / sched-rtds -d -v | XEN_DOMCTL_SCHEDOP_getinfo / getvcpuinfo |
 * | domctl.scheduler_op.putinfo          | sched-credit2 -w -c / sched-rtds -p -b -e | XEN_DOMCTL_SCHEDOP_putinfo / putvcpuinfo |
 * | sysctl.scheduler_op                  | sched-credit2 -s [-r]               | XEN_SYSCTL_SCHEDOP_{get,put}info      |
 * | domctl.setvcpuaffinity               | vcpu-pin                            | XEN_DOMCTL_setvcpuaffinity            |
 * | domctl.getvcpuinfo                   | vcpu-list                           | XEN_DOMCTL_getvcpuinfo + getvcpuaffinity |
 * | domctl.setvcpusonline                | vcpu-set                            | (libxl: xenstore availability + VCPUOP_up/down) |
 * | sysctl.cpupool_op.*                  | cpupool-*                           | XEN_SYSCTL_CPUPOOL_OP_*               |
 */
export interface SchedHypercalls {
  'domctl.scheduler_op.getinfo': {
    args: { domid: DomId };
    reply: { sched: 'credit2'; params: Credit2Params } | { sched: 'rtds'; vcpus: RtdsVcpuParams[] } | { sched: 'null' };
  };
  'domctl.scheduler_op.putinfo': {
    args: { domid: DomId; weight?: number; cap?: number; rtds?: Partial<Omit<RtdsVcpuParams, 'vcpu'>> & { vcpu: number | 'all' } };
    reply: null;
  };
  'sysctl.scheduler_op': { args: { pool: string; ratelimit_us?: number }; reply: PoolSchedParams & { sched: SchedulerName } };
  'domctl.setvcpuaffinity': { args: { domid: DomId; vcpu: number | 'all'; hard?: CpuList; soft?: CpuList }; reply: null };
  'domctl.getvcpuinfo': { args: { domid?: DomId }; reply: VcpuInfo[] };
  'domctl.setvcpusonline': { args: { domid: DomId; online: number }; reply: null };
  'sysctl.domaincpuinfo': { args: Record<string, never>; reply: DomainCpuInfo[] };
  'sysctl.cpupool_op.info': { args: { name?: string }; reply: CpupoolInfo[] };
  'sysctl.cpupool_op.create': { args: { name: string; sched?: SchedulerName; cpus?: number[] }; reply: { poolid: number } };
  'sysctl.cpupool_op.destroy': { args: { name: string }; reply: null };
  'sysctl.cpupool_op.rename': { args: { name: string; newname: string }; reply: null };
  'sysctl.cpupool_op.addcpu': { args: { name: string; cpus: number[] }; reply: null };
  'sysctl.cpupool_op.rmcpu': { args: { name: string; cpus: number[] }; reply: null };
  'sysctl.cpupool_op.movedomain': { args: { name: string; domid: DomId }; reply: null };
}
export type SchedHypercallOp = keyof SchedHypercalls;

/** SCHEDOP_* sub-ops a guest passes in a0 of HYPERVISOR_sched_op (xen/include/public/sched.h). */
export const SCHEDOP = { yield: 0, block: 1, shutdown: 2, poll: 3, remote_shutdown: 4, shutdown_code: 5, watchdog: 6, pin_override: 7 } as const;

/** Format a pCPU list the way xl prints affinity: "all", "none" or ranges "0-3,5" (xl_utils.c: print_bitmap). */
export function formatCpuList(cpus: readonly number[], nrCpus: number): string {
  const s = [...new Set(cpus)].sort((a, b) => a - b);
  if (s.length === 0) return 'none';
  if (s.length === nrCpus && s[0] === 0 && s[s.length - 1] === nrCpus - 1) return 'all';
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
