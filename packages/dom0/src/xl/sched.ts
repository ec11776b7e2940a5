/**
 * `xl sched-credit2` and `xl sched-rtds`: tools/xl/xl_sched.c
 * (main_sched_credit2, main_sched_rtds), option rules, messages and output
 * byte for byte.
 */
import { CREDIT2_WEIGHT_MAX, CREDIT2_WEIGHT_MIN, type CpupoolInfo, type Credit2Params, type DomId, type DomainInfo, type RtdsVcpuParams } from '@xenbox/abi';
import { findDomain, type XlContext } from './context.js';
import { XlFailure, intOption, libxl } from './failure.js';

// ------------------------------------------------------------------ formats

/** sched_credit2_domain_output(-1). */
export const credit2Header = (): string => `${'Name'.padEnd(33)} ${'ID'.padStart(4)} ${'Weight'.padStart(6)} ${'Cap'.padStart(4)}\n`;
/** sched_credit2_domain_output(domid): `%-33s %4d %6d %4d`. */
export const credit2Row = (name: string, domid: DomId, weight: number, cap: number): string =>
  `${name.padEnd(33)} ${String(domid).padStart(4)} ${String(weight).padStart(6)} ${String(cap).padStart(4)}\n`;
/** sched_credit2_pool_output(). */
export const credit2PoolLine = (pool: string, ratelimitUs: number): string => `Cpupool ${pool}: ratelimit=${ratelimitUs}us\n`;

/** sched_rtds_domain_output(-1). */
export const rtdsHeader = (): string => `${'Name'.padEnd(33)} ${'ID'.padStart(4)} ${'Period'.padStart(9)} ${'Budget'.padStart(9)} ${'Extratime'.padStart(10)}\n`;
/** sched_rtds_domain_output(domid): `%-33s %4d %9d %9d %10s`. */
export const rtdsRow = (name: string, domid: DomId, p: RtdsVcpuParams): string =>
  `${name.padEnd(33)} ${String(domid).padStart(4)} ${String(p.period).padStart(9)} ${String(p.budget).padStart(9)} ${(p.extratime ? 'yes' : 'no').padStart(10)}\n`;
/** sched_rtds_vcpu_output(-1). */
export const rtdsVcpuHeader = (): string =>
  `${'Name'.padEnd(33)} ${'ID'.padStart(4)} ${'VCPU'.padStart(4)} ${'Period'.padStart(9)} ${'Budget'.padStart(9)} ${'Extratime'.padStart(10)}\n`;
/** sched_rtds_vcpu_output(domid): `%-33s %4d %4d %9u %9u %10s` per vCPU. */
export const rtdsVcpuRow = (name: string, domid: DomId, p: RtdsVcpuParams): string =>
  `${name.padEnd(33)} ${String(domid).padStart(4)} ${String(p.vcpu).padStart(4)} ${String(p.period).padStart(9)} ${String(p.budget).padStart(9)} ${(p.extratime ? 'yes' : 'no').padStart(10)}\n`;
/** sched_rtds_pool_output(). */
export const rtdsPoolLine = (pool: string): string => `Cpupool ${pool}: sched=RTDS\n`;

// ------------------------------------------------------------------ shared

/** libxl_cpupool_qualifier_to_cpupoolid: a pool by name, or "unknown cpupool 'X'". */
async function findPool(ctx: XlContext, name: string): Promise<CpupoolInfo> {
  const pools = await ctx.hv.call('sysctl.cpupool_op.info', {});
  const p = pools.find((x) => x.name === name || String(x.poolid) === name);
  if (!p) throw new XlFailure(`unknown cpupool '${name}'`);
  return p;
}

/** sched_domain_get(): the domain's parameters, which must be of the scheduler asked for. */
async function schedInfo(ctx: XlContext, domid: DomId, want: 'credit2' | 'rtds') {
  const info = await libxl('libxl_domain_sched_params_get failed.', () => ctx.hv.call('domctl.scheduler_op.getinfo', { domid }));
  if (info.sched !== want) throw new XlFailure(`libxl_domain_sched_params_get returned ${info.sched} not ${want}.`);
  return info;
}

async function credit2Of(ctx: XlContext, domid: DomId): Promise<Credit2Params> {
  const info = await schedInfo(ctx, domid, 'credit2');
  return info.sched === 'credit2' ? info.params : { weight: 0, cap: 0 };
}

async function rtdsOf(ctx: XlContext, domid: DomId): Promise<RtdsVcpuParams[]> {
  const info = await schedInfo(ctx, domid, 'rtds');
  return info.sched === 'rtds' ? info.vcpus : [];
}

/**
 * sched_domain_output(): for every pool running `sched` (or just `poolName`):
 * its pool line, the header, and a row per domain in it.
 */
async function listPools(ctx: XlContext, sched: 'credit2' | 'rtds', poolName: string | undefined, pool: (p: CpupoolInfo) => Promise<string>, header: string, row: (d: DomainInfo) => Promise<string>): Promise<string> {
  const wanted = poolName === undefined ? undefined : await findPool(ctx, poolName);
  const [pools, domains] = await Promise.all([ctx.hv.call('sysctl.cpupool_op.info', {}), ctx.hv.call('sysctl.getdomaininfolist', {})]);
  let out = '';
  for (const p of pools) {
    if (p.sched !== sched || (wanted && wanted.poolid !== p.poolid)) continue;
    out += (await pool(p)) + header;
    for (const d of domains) if (p.domains.includes(d.domid)) out += await row(d);
  }
  return out;
}

// ------------------------------------------------------------------ credit2

export interface Credit2Options {
  domain?: string;
  weight?: string;
  cap?: string;
  schedparam?: boolean;
  ratelimit?: string;
  cpupool?: string;
}

/** libxl sched_credit2_domain_set(): weight 1..65535 (0 is not a weight xl accepts). */
function checkWeight(weight: number): void {
  if (weight < CREDIT2_WEIGHT_MIN || weight > CREDIT2_WEIGHT_MAX)
    throw new XlFailure(`libxl: error: Cpu weight out of range, valid values are within range from ${CREDIT2_WEIGHT_MIN} to ${CREDIT2_WEIGHT_MAX}\nlibxl_domain_sched_params_set failed.`);
}

/** main_sched_credit2(). */
export async function xlSchedCredit2(ctx: XlContext, o: Credit2Options): Promise<string> {
  const weight = o.weight === undefined ? undefined : intOption('weight', o.weight);
  const cap = o.cap === undefined ? undefined : intOption('cap', o.cap);
  const ratelimit = o.ratelimit === undefined ? undefined : intOption('ratelimit', o.ratelimit);
  if (o.cpupool !== undefined && (o.domain !== undefined || weight !== undefined || cap !== undefined))
    throw new XlFailure('Specifying a cpupool is not allowed with other options.');
  if (o.domain === undefined && (weight !== undefined || cap !== undefined)) throw new XlFailure('Must specify a domain.');

  if (o.schedparam) {
    const pool = o.cpupool === undefined ? 'Pool-0' : (await findPool(ctx, o.cpupool)).name;
    if (ratelimit === undefined) {
      const p = await ctx.hv.call('sysctl.scheduler_op', { pool }).catch(() => null);
      return p && p.sched === 'credit2' ? credit2PoolLine(pool, p.ratelimit_us) : `Cpupool ${pool}: [sched params unavailable]\n`;
    }
    await libxl('libxl_sched_credit2_params_set failed.', () => ctx.hv.call('sysctl.scheduler_op', { pool, ratelimit_us: ratelimit }));
    return '';
  }
  if (o.domain === undefined) {
    return listPools(ctx, 'credit2', o.cpupool, async (p) => credit2PoolLine(p.name, (await ctx.hv.call('sysctl.scheduler_op', { pool: p.name })).ratelimit_us), credit2Header(), async (d) => {
      const params = await credit2Of(ctx, d.domid);
      return credit2Row(d.name, d.domid, params.weight, params.cap);
    });
  }
  const d = await findDomain(ctx, o.domain);
  if (weight === undefined && cap === undefined) {
    const params = await credit2Of(ctx, d.domid);
    return credit2Header() + credit2Row(d.name, d.domid, params.weight, params.cap);
  }
  if (weight !== undefined) checkWeight(weight);
  await credit2Of(ctx, d.domid);
  await libxl('libxl_domain_sched_params_set failed.', () => ctx.hv.call('domctl.scheduler_op.putinfo', { domid: d.domid, ...(weight !== undefined && { weight }), ...(cap !== undefined && { cap }) }));
  return '';
}

// ------------------------------------------------------------------ rtds

export interface RtdsOptions {
  domain?: string;
  /** -v, repeatable: vCPU numbers or "all". */
  vcpus: string[];
  periods: string[];
  budgets: string[];
  extratimes: string[];
  cpupool?: string;
}

/** main_sched_rtds(): the option rules, in xl's order and words. */
function checkRtdsOptions(o: RtdsOptions): { all: boolean; vcpus: number[]; set: boolean } {
  for (const e of o.extratimes) if (e !== '0' && e !== '1') throw new XlFailure('Invalid extratime.');
  const all = o.vcpus.includes('all');
  const vcpus = o.vcpus.filter((v) => v !== 'all').map((v) => intOption('vcpu', v));
  const optV = vcpus.length > 0;
  const [p, b, e] = [o.periods.length, o.budgets.length, o.extratimes.length];
  const set = p > 0 || b > 0 || e > 0;
  if (o.cpupool !== undefined && (o.domain !== undefined || set || optV || all)) throw new XlFailure('Specifying a cpupool is not allowed with other options.');
  if (o.domain === undefined && (set || optV)) throw new XlFailure('Missing parameters.');
  if (o.domain !== undefined && !optV && !all && set) throw new XlFailure('Must specify VCPU.');
  if (optV && all) throw new XlFailure('Incorrect VCPU IDs.');
  const n = vcpus.length;
  if ((n > b && b > 0) || (n > p && p > 0) || (n > e && e > 0) || p !== b || p !== e)
    throw new XlFailure('Incorrect number of period, budget and extratime');
  return { all, vcpus, set };
}

/** main_sched_rtds(). */
export async function xlSchedRtds(ctx: XlContext, o: RtdsOptions): Promise<string> {
  const { all, vcpus, set } = checkRtdsOptions(o);
  const vcpuParams = (domid: DomId) => rtdsOf(ctx, domid);
  if (o.domain === undefined) {
    if (all)
      return listPools(ctx, 'rtds', o.cpupool, async (p) => rtdsPoolLine(p.name), rtdsVcpuHeader(), async (d) =>
        (await vcpuParams(d.domid)).map((p) => rtdsVcpuRow(d.name, d.domid, p)).join(''),
      );
    return listPools(ctx, 'rtds', o.cpupool, async (p) => rtdsPoolLine(p.name), rtdsHeader(), async (d) => rtdsRow(d.name, d.domid, (await vcpuParams(d.domid))[0]!));
  }
  const d = await findDomain(ctx, o.domain);
  if (vcpus.length === 0 && !all) return rtdsHeader() + rtdsRow(d.name, d.domid, (await vcpuParams(d.domid))[0]!);
  if (!set) {
    const params = await vcpuParams(d.domid);
    const shown = all ? params : vcpus.map((v) => {
      const p = params[v];
      if (!p) throw new XlFailure(`libxl: error: Domain ${d.domid}: invalid vcpu ${v}\nlibxl_vcpu_sched_params_get failed.`);
      return p;
    });
    return rtdsVcpuHeader() + shown.map((p) => rtdsVcpuRow(d.name, d.domid, p)).join('');
  }
  await rtdsOf(ctx, d.domid);
  const targets: Array<number | 'all'> = all ? ['all'] : vcpus;
  for (const [i, vcpu] of targets.entries()) {
    const rtds = { vcpu, period: intOption('period', o.periods[i]!), budget: intOption('budget', o.budgets[i]!), extratime: o.extratimes[i] === '1' };
    await libxl(all ? 'libxl_vcpu_sched_params_set_all failed.' : 'libxl_vcpu_sched_params_set failed.', () => ctx.hv.call('domctl.scheduler_op.putinfo', { domid: d.domid, rtds }));
  }
  return '';
}
