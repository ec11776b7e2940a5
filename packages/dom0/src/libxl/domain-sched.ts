/**
 * The scheduling keys of xl.cfg, applied to a guest that is built but still
 * paused, in libxl's order (libxl_dom.c: libxl__build_pre / build_post):
 *
 *   pool=            cpupool move                  (createdomain's cpupool id)
 *   cpus= cpus_soft= hard / soft affinity          (libxl_set_vcpuaffinity)
 *   cpu_weight= cap= credit2 parameters            (libxl__sched_set_params)
 *   period= slice=   RTDS period / budget, in a pool that runs rtds
 *   vcpus=           vCPUs online (< maxvcpus)     (libxl_set_vcpuonline)
 *
 * CPULISTs are parsed against the host's pCPUs from sysctl.physinfo, so a
 * CPU the host lacks is an error naming it.
 */
import { CREDIT2_WEIGHT_DEFAULT, XenError, type DomId } from '@xenbox/abi';
import type { HypervisorConnection } from '@xenbox/libxen';
import { cpuMapToList, evenTopology, parseCpuList, type CpuTopology } from '../xlcfg/cpulist.js';
import type { CpuAffinity, DomainConfig } from '../xlcfg/domain-config.js';

const POOL0 = 'Pool-0';

/** Prefix an error with the config key it came from, keeping its errno. */
async function asKey<T>(cfg: DomainConfig, key: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof XenError) throw new XenError(e.errno, `${cfg.name}: ${key}: ${e.detail}`);
    throw e;
  }
}

export async function applySchedParams(hv: HypervisorConnection, domid: DomId, cfg: DomainConfig, say?: (line: string) => void): Promise<void> {
  if (cfg.pool && cfg.pool !== POOL0) {
    await asKey(cfg, `pool="${cfg.pool}"`, () => hv.call('sysctl.cpupool_op.movedomain', { name: cfg.pool!, domid }));
  }
  if (cfg.cpus || cfg.cpusSoft) {
    const phys = await hv.call('sysctl.physinfo', {});
    const topo = evenTopology(phys.nr_cpus, phys.nr_nodes);
    if (cfg.cpus) await setAffinity(hv, domid, cfg, 'cpus', 'hard', cfg.cpus, topo);
    if (cfg.cpusSoft) await setAffinity(hv, domid, cfg, 'cpus_soft', 'soft', cfg.cpusSoft, topo);
  }
  await applySchedulerParams(hv, domid, cfg, say);
  if (cfg.vcpus < cfg.maxVcpus) {
    await asKey(cfg, `vcpus=${cfg.vcpus}`, () => hv.call('domctl.setvcpusonline', { domid, online: cfg.vcpus }));
  }
}

/** One CPULIST for every vCPU, or one per vCPU (a list in xl.cfg: vCPU i gets item i). */
async function setAffinity(hv: HypervisorConnection, domid: DomId, cfg: DomainConfig, key: string, which: 'hard' | 'soft', aff: CpuAffinity, topo: CpuTopology): Promise<void> {
  const pcpus = (spec: string) => cpuMapToList(parseCpuList(spec, topo));
  if (aff.kind === 'all-vcpus') {
    await asKey(cfg, `${key}="${aff.cpulist}"`, () => hv.call('domctl.setvcpuaffinity', { domid, vcpu: 'all', [which]: pcpus(aff.cpulist) }));
    return;
  }
  for (const [vcpu, spec] of aff.cpulists.slice(0, cfg.maxVcpus).entries()) {
    await asKey(cfg, `${key}[${vcpu}]="${spec}"`, () => hv.call('domctl.setvcpuaffinity', { domid, vcpu, [which]: pcpus(spec) }));
  }
}

/** cpu_weight/cap for credit2, period/slice for rtds: whichever the domain's pool runs (libxl__sched_set_params). */
async function applySchedulerParams(hv: HypervisorConnection, domid: DomId, cfg: DomainConfig, say?: (line: string) => void): Promise<void> {
  const { weight, cap, period, slice, extratime } = cfg.sched;
  const credit2Given = weight !== CREDIT2_WEIGHT_DEFAULT || cap !== 0;
  const rtdsGiven = period !== undefined || slice !== undefined || extratime !== undefined;
  if (!credit2Given && !rtdsGiven) return;
  const info = await hv.call('domctl.scheduler_op.getinfo', { domid });
  if (info.sched === 'credit2' && credit2Given) {
    await asKey(cfg, `cpu_weight=${weight}, cap=${cap}`, () => hv.call('domctl.scheduler_op.putinfo', { domid, weight, cap }));
  } else if (info.sched === 'rtds' && rtdsGiven) {
    const rtds = { vcpu: 'all' as const, period, budget: slice, ...(extratime !== undefined && { extratime: extratime !== 0 }) };
    await asKey(cfg, 'period/slice', () => hv.call('domctl.scheduler_op.putinfo', { domid, rtds }));
  } else {
    say?.(`${cfg.name}: the domain's cpupool runs ${info.sched}: ${credit2Given ? 'cpu_weight/cap' : 'period/slice/extratime'} do not apply to it`);
  }
}
