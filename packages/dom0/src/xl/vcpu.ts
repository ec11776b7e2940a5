/**
 * `xl vcpu-list`, `xl vcpu-pin`, `xl vcpu-set`: tools/xl/xl_vcpu.c, output
 * and messages byte for byte.
 */
import { XenError, formatCpuList, type DomId, type VcpuInfo } from '@xenbox/abi';
import { cpuMapToList, evenTopology, parseCpuList } from '../xlcfg/cpulist.js';
import { findDomain, type XlContext } from './context.js';
import { XlFailure, libxl } from './failure.js';

/** vcpulist(): the header line. */
export function vcpuListHeader(): string {
  return `${'Name'.padEnd(32)} ${'ID'.padStart(5)} ${'VCPU'.padStart(5)} ${'CPU'.padStart(5)} ${'State'.padStart(5)} ${'Time(s)'.padStart(9)} Affinity (Hard / Soft)\n`;
}

/** The pCPU a vCPU shows: where it runs or last ran; one that never ran shows the first of its hard affinity (Xen's v->processor). */
function shownCpu(v: VcpuInfo): number {
  return v.cpu >= 0 ? v.cpu : (v.hard[0] ?? 0);
}

/** print_vcpuinfo(): `%-32s %5u %5u`, then `%5u %3c%c- ` (online) or `%5c %3c%cp ` (offline), `%9.1f  `, hard ` / ` soft. */
export function formatVcpuRow(name: string, v: VcpuInfo, nrCpus: number): string {
  let row = `${name.padEnd(32)} ${String(v.domid).padStart(5)} ${String(v.vcpu).padStart(5)}`;
  if (!v.online) row += `${'-'.padStart(5)} ${'-'.padStart(3)}-p `;
  else row += `${String(shownCpu(v)).padStart(5)} ${(v.state === 'running' ? 'r' : '-').padStart(3)}${v.state === 'blocked' ? 'b' : '-'}- `;
  row += `${(v.cpuTimeNs / 1e9).toFixed(1).padStart(9)}  `;
  return `${row}${formatCpuList(v.hard, nrCpus)} / ${formatCpuList(v.soft, nrCpus)}\n`;
}

export function formatVcpuList(vcpus: VcpuInfo[], names: ReadonlyMap<DomId, string>, nrCpus: number): string {
  return vcpuListHeader() + vcpus.map((v) => formatVcpuRow(names.get(v.domid) ?? `(d${v.domid})`, v, nrCpus)).join('');
}

/** `xl vcpu-list [domain...]`: every domain with vCPUs, or the ones named (in that order). */
export async function xlVcpuList(ctx: XlContext, domains: string[]): Promise<string> {
  const [phys, list] = await Promise.all([ctx.hv.call('sysctl.physinfo', {}), ctx.hv.call('sysctl.getdomaininfolist', {})]);
  const names = new Map(list.map((d) => [d.domid, d.name] as const));
  let vcpus: VcpuInfo[];
  if (domains.length === 0) vcpus = await ctx.hv.call('domctl.getvcpuinfo', {});
  else {
    vcpus = [];
    for (const spec of domains) vcpus.push(...(await vcpusOf(ctx, (await findDomain(ctx, spec)).domid)));
  }
  return formatVcpuList(vcpus, names, phys.nr_cpus);
}

/** A domain without vCPUs in the scheduler (dom0 and the service domains are processes) lists none. */
async function vcpusOf(ctx: XlContext, domid: DomId): Promise<VcpuInfo[]> {
  try {
    return await ctx.hv.call('domctl.getvcpuinfo', { domid });
  } catch (e) {
    if (e instanceof XenError && e.errno === 'ESRCH') return [];
    throw e;
  }
}

/** main_vcpupin()'s vCPU argument: a number >= 0 or "all". */
export function parseVcpuArg(text: string, force: boolean): number | 'all' {
  const m = /^\s*([+-]?\d+)/.exec(text);
  if (m && Number(m[1]) >= 0) return Number(m[1]);
  if (text !== 'all') throw new XlFailure(`Error: Invalid argument ${text} as VCPU.`);
  if (force) throw new XlFailure("Error: --force and 'all' as VCPU not allowed.");
  return 'all';
}

/** A CPULIST of vcpu-pin, or "-" for "leave it alone" (undefined). */
function pinMap(spec: string | undefined, nrCpus: number): number[] | undefined {
  if (spec === undefined || spec === '-') return undefined;
  try {
    return cpuMapToList(parseCpuList(spec, evenTopology(nrCpus)));
  } catch (e) {
    throw new XlFailure(e instanceof XenError ? e.detail : (e as Error).message);
  }
}

/**
 * `xl vcpu-pin [-f] domain vcpu|all hard [soft]`.  -f (libxl_set_vcpuaffinity_force)
 * is the same call here: xenbox has no pending-affinity state to override.
 */
export async function xlVcpuPin(ctx: XlContext, dom: string, vcpuArg: string, hardSpec: string, softSpec: string | undefined, force: boolean): Promise<void> {
  const domid = (await findDomain(ctx, dom)).domid;
  const vcpu = parseVcpuArg(vcpuArg, force);
  const { nr_cpus } = await ctx.hv.call('sysctl.physinfo', {});
  const hard = pinMap(hardSpec, nr_cpus);
  const soft = pinMap(softSpec, nr_cpus);
  if (!hard && !soft) return; // "-" and "-": nothing to change
  // xl prints "Could not set affinity." for 'all' but still returns EXIT_SUCCESS (main_vcpupin).
  const failure = vcpu === 'all' ? 'Could not set affinity.' : `Could not set affinity for vcpu \`${vcpu}'.`;
  await libxl(failure, () => ctx.hv.call('domctl.setvcpuaffinity', { domid, vcpu, ...(hard && { hard }), ...(soft && { soft }) })).catch((e: unknown) => {
    if (vcpu === 'all' && e instanceof XlFailure) throw new XlFailure(e.message, 0);
    throw e;
  });
}

/** `xl vcpu-set [-i] domain N`: vcpuset(). */
export async function xlVcpuSet(ctx: XlContext, dom: string, count: string, ignoreHost: boolean): Promise<void> {
  const d = await findDomain(ctx, dom);
  const m = /^\s*([+-]?\d+)/.exec(count);
  if (!m) throw new XlFailure('Error: Invalid argument.');
  const n = Number(m[1]);
  if (!ignoreHost) {
    const hostCpus = (await ctx.hv.call('sysctl.physinfo', {})).nr_cpus;
    if (n > d.vcpusOnline && n > hostCpus)
      throw new XlFailure(`You are overcommmitting! You have ${hostCpus} physical CPUs and want ${n} vCPUs! Aborting, use --ignore-host to continue`);
  }
  try {
    await ctx.hv.call('domctl.setvcpusonline', { domid: d.domid, online: n });
  } catch (e) {
    if (!(e instanceof XenError)) throw e;
    if (e.errno === 'ESRCH') throw new XlFailure(`Domain ${d.domid} does not exist.`);
    const rc = e.errno === 'EINVAL' ? -6 /* ERROR_INVAL */ : -3; /* ERROR_FAIL */
    throw new XlFailure(`libxl: error: ${e.detail}\nlibxl_set_vcpuonline failed domid=${d.domid} max_vcpus=${n}, rc: ${rc}`);
  }
}
