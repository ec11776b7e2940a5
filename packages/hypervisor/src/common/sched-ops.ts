/**
 * The scheduling hypercalls (packages/abi/src/sched.ts, SchedHypercalls):
 * what `xl sched-credit2`, `sched-rtds`, `vcpu-list`, `vcpu-pin`,
 * `vcpu-set`, `top` and `cpupool-*` ask of the hypervisor, served by the
 * vCPU scheduler's facade (docs/sched.md).  After xen/common/sched/core.c
 * (sched_adjust, sched_adjust_global, vcpu_set_affinity), domctl.c
 * (XEN_DOMCTL_getvcpuinfo) and sched/cpupool.c (cpupool_do_sysctl).
 *
 * All dom0's (XSM_PRIV).  Every argument is checked here: a bad one is
 * EINVAL naming the field; a domain the scheduler does not run is ESRCH.
 */
import {
  RTDS_MIN_US,
  SCHEDULERS,
  SCHED_RATELIMIT_MAX_US,
  SCHED_RATELIMIT_MIN_US,
  XenError,
  argDomId,
  argEnum,
  argInt,
  argIntArray,
  argObject,
  argOptBool,
  argOptInt,
  argString,
  type CpuList,
  type CpupoolInfo,
  type DomId,
  type Fields,
  type RtdsVcpuParams,
} from '@xenbox/abi';
import type { VcpuScheduler } from '../sched/index.js';
import type { Hypervisor } from '../hypervisor.js';
import type { HypercallTable } from './hypercall-table.js';

/** cpupool names: what xl accepts in a config file's name= (a printable token). */
const POOL_NAME_MAX = 64;
/** XEN_LEGACY_MAX_VCPUS-sized bound on a vCPU number. */
const VCPU_MAX = 127;
/** RTDS periods/budgets are uint32 microseconds. */
const RTDS_MAX_US = 0xffff_ffff;
/** Pool-0, the pool every pCPU belongs to at boot (cpupool.c: cpupool0). */
const POOL0 = 'Pool-0';

export function schedOps(hv: Hypervisor): HypercallTable {
  /** The scheduler, which must run `domid`'s vCPUs; ESRCH otherwise (as for a domain Xen does not know). */
  function schedFor(op: string, domid: DomId): VcpuScheduler {
    const d = hv.domains.get(domid);
    if (!d || d.dying) throw new XenError('ESRCH', `${op}: no domain ${domid}`);
    const s = hv.guests.scheduler;
    if (!s?.hasDomain(domid)) throw new XenError('ESRCH', `${op}: d${domid} (${d.name}) has no vCPUs in the scheduler (a process domain, or a guest not built yet)`);
    return s;
  }

  const allPcpus = () => hv.guests.nrPcpus;

  return {
    'domctl.scheduler_op.getinfo': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.scheduler_op.getinfo';
        const domid = argDomId(op, argObject(op, raw));
        return schedFor(op, domid).schedInfo(domid);
      },
    },

    'domctl.scheduler_op.putinfo': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.scheduler_op.putinfo';
        const a = argObject(op, raw);
        const domid = argDomId(op, a);
        const s = schedFor(op, domid);
        const weight = argOptInt(op, a, 'weight', 0, 65535); // 0 = unchanged (credit2.c csched2_dom_cntl)
        const cap = argOptInt(op, a, 'cap', 0, 100 * VCPU_MAX);
        const rtds = a.rtds === undefined || a.rtds === null ? undefined : rtdsArgs(op, argObject(`${op} rtds`, a.rtds));
        if (weight === undefined && cap === undefined && !rtds) throw new XenError('EINVAL', `${op}: give weight/cap (credit2) or rtds`);
        if (weight !== undefined || cap !== undefined) s.setCredit2(domid, { weight, cap });
        if (rtds) s.setRtds(domid, rtds.vcpu, rtds.params);
        return null;
      },
    },

    'sysctl.scheduler_op': {
      priv: 'priv',
      async handle(_caller, raw) {
        const op = 'sysctl.scheduler_op';
        const a = argObject(op, raw);
        const pool = argString(op, a, 'pool', POOL_NAME_MAX);
        const ratelimit = argOptInt(op, a, 'ratelimit_us', 0, SCHED_RATELIMIT_MAX_US);
        if (ratelimit !== undefined && ratelimit !== 0 && ratelimit < SCHED_RATELIMIT_MIN_US)
          throw new XenError('EINVAL', `${op}: ratelimit_us=${ratelimit} is outside ${SCHED_RATELIMIT_MIN_US}..${SCHED_RATELIMIT_MAX_US} (0 disables)`);
        const s = await hv.guests.startScheduler();
        return s.poolParams(pool, ratelimit === undefined ? undefined : { ratelimit_us: ratelimit });
      },
    },

    'domctl.setvcpuaffinity': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.setvcpuaffinity';
        const a = argObject(op, raw);
        const domid = argDomId(op, a);
        const vcpu = argVcpuOrAll(op, a);
        const hard = argOptCpuList(op, a, 'hard', allPcpus());
        const soft = argOptCpuList(op, a, 'soft', allPcpus());
        if (!hard && !soft) throw new XenError('EINVAL', `${op}: give hard and/or soft affinity`);
        schedFor(op, domid).setAffinity(domid, vcpu, { hard, soft });
        return null;
      },
    },

    'domctl.getvcpuinfo': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.getvcpuinfo';
        const a = argObject(op, raw);
        if (a.domid === undefined || a.domid === null) return hv.guests.scheduler?.vcpuList() ?? [];
        const domid = argDomId(op, a);
        return schedFor(op, domid).vcpuList(domid);
      },
    },

    'domctl.setvcpusonline': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.setvcpusonline';
        const a = argObject(op, raw);
        const domid = argDomId(op, a);
        const online = argInt(op, a, 'online', 1, VCPU_MAX + 1);
        schedFor(op, domid).setVcpusOnline(domid, online);
        return null;
      },
    },

    'sysctl.domaincpuinfo': {
      priv: 'priv',
      handle(_caller, raw) {
        argObject('sysctl.domaincpuinfo', raw);
        return hv.guests.scheduler?.domainCpuInfo() ?? [];
      },
    },

    'sysctl.cpupool_op.info': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'sysctl.cpupool_op.info';
        const a = argObject(op, raw);
        const name = a.name === undefined || a.name === null ? undefined : argPoolName(op, a, 'name');
        // Before the first guest the scheduler has not started: Pool-0 holds every pCPU, as at boot.
        const pools = hv.guests.scheduler?.cpupoolList() ?? [bootPool0(allPcpus())];
        if (name === undefined) return pools;
        const hit = pools.filter((p) => p.name === name);
        if (hit.length === 0) throw new XenError('ENOENT', `${op}: no cpupool '${name}'`);
        return hit;
      },
    },

    'sysctl.cpupool_op.create': {
      priv: 'priv',
      async handle(_caller, raw) {
        const op = 'sysctl.cpupool_op.create';
        const a = argObject(op, raw);
        const name = argPoolName(op, a, 'name');
        const sched = a.sched === undefined || a.sched === null ? undefined : argEnum(op, a, 'sched', SCHEDULERS);
        const cpus = a.cpus === undefined || a.cpus === null ? [] : argIntArray(op, a, 'cpus', allPcpus(), 0, allPcpus() - 1);
        const s = await hv.guests.startScheduler();
        return { poolid: s.cpupoolCreate(name, sched, cpus) };
      },
    },

    'sysctl.cpupool_op.destroy': {
      priv: 'priv',
      async handle(_caller, raw) {
        const op = 'sysctl.cpupool_op.destroy';
        const name = argPoolName(op, argObject(op, raw), 'name');
        (await hv.guests.startScheduler()).cpupoolDestroy(name);
        return null;
      },
    },

    'sysctl.cpupool_op.rename': {
      priv: 'priv',
      async handle(_caller, raw) {
        const op = 'sysctl.cpupool_op.rename';
        const a = argObject(op, raw);
        const name = argPoolName(op, a, 'name');
        const newname = argPoolName(op, a, 'newname');
        (await hv.guests.startScheduler()).cpupoolRename(name, newname);
        return null;
      },
    },

    'sysctl.cpupool_op.addcpu': {
      priv: 'priv',
      async handle(_caller, raw) {
        const op = 'sysctl.cpupool_op.addcpu';
        const a = argObject(op, raw);
        const name = argPoolName(op, a, 'name');
        const cpus = argPcpus(op, a, allPcpus());
        const s = await hv.guests.startScheduler();
        for (const c of cpus) s.cpupoolCpuAdd(name, c);
        return null;
      },
    },

    'sysctl.cpupool_op.rmcpu': {
      priv: 'priv',
      async handle(_caller, raw) {
        const op = 'sysctl.cpupool_op.rmcpu';
        const a = argObject(op, raw);
        const name = argPoolName(op, a, 'name');
        const cpus = argPcpus(op, a, allPcpus());
        const s = await hv.guests.startScheduler();
        for (const c of cpus) s.cpupoolCpuRemove(name, c);
        return null;
      },
    },

    'sysctl.cpupool_op.movedomain': {
      priv: 'priv',
      async handle(_caller, raw) {
        const op = 'sysctl.cpupool_op.movedomain';
        const a = argObject(op, raw);
        const name = argPoolName(op, a, 'name');
        const domid = argDomId(op, a);
        // cpupool.c: cpupool_movedomain refuses dom0 (EPERM); xenbox's dom0 has no vCPUs to move anyway.
        if (domid === 0) throw new XenError('EPERM', `${op}: Domain-0 cannot leave ${POOL0}`);
        await schedFor(op, domid).cpupoolMigrate(domid, name);
        return null;
      },
    },
  };
}

/** What cpupool-list shows before any guest started the scheduler: the boot Pool-0. */
function bootPool0(nrPcpus: number): CpupoolInfo {
  return { poolid: 0, name: POOL0, sched: 'credit2', cpus: Array.from({ length: nrPcpus }, (_, i) => i), domains: [] };
}

function argPoolName(op: string, a: Fields, key: string): string {
  const name = argString(op, a, key, POOL_NAME_MAX);
  if (!/^[^\s'"=,]+$/.test(name)) throw new XenError('EINVAL', `${op}: ${key} '${name}' must be a non-empty name without spaces, quotes, '=' or ','`);
  return name;
}

function argVcpuOrAll(op: string, a: Fields): number | 'all' {
  return a.vcpu === 'all' ? 'all' : argInt(op, a, 'vcpu', 0, VCPU_MAX);
}

/** A CpuList: "all" or a non-empty list of pCPUs that exist. */
function argOptCpuList(op: string, a: Fields, key: string, nrPcpus: number): CpuList | undefined {
  const v = a[key];
  if (v === undefined || v === null) return undefined;
  if (v === 'all') return 'all';
  const cpus = argIntArray(op, a, key, nrPcpus, 0, nrPcpus - 1);
  if (cpus.length === 0) throw new XenError('EINVAL', `${op}: ${key} affinity is empty`);
  return cpus;
}

function argPcpus(op: string, a: Fields, nrPcpus: number): number[] {
  const cpus = argIntArray(op, a, 'cpus', nrPcpus, 0, nrPcpus - 1);
  if (cpus.length === 0) throw new XenError('EINVAL', `${op}: cpus is empty`);
  return cpus;
}

/** putinfo's rtds part: vcpu (a number or "all") and any of period/budget (us) and extratime. */
function rtdsArgs(op: string, r: Fields): { vcpu: number | 'all'; params: Partial<Omit<RtdsVcpuParams, 'vcpu'>> } {
  const where = `${op} rtds`;
  const vcpu = argVcpuOrAll(where, r);
  const period = argOptInt(where, r, 'period', RTDS_MIN_US, RTDS_MAX_US);
  const budget = argOptInt(where, r, 'budget', RTDS_MIN_US, RTDS_MAX_US);
  const extratime = argOptBool(where, r, 'extratime');
  if (period !== undefined && budget !== undefined && budget > period)
    throw new XenError('EINVAL', `${where}: budget=${budget} is more than period=${period}`);
  return { vcpu, params: { ...(period !== undefined && { period }), ...(budget !== undefined && { budget }), ...(extratime !== undefined && { extratime }) } };
}
