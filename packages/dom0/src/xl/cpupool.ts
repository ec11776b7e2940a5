/**
 * `xl cpupool-*`: tools/xl/xl_cpupool.c, messages, output and exit codes as
 * xl's (note xl returns success from cpupool-cpu-add/-remove even when a CPU
 * could not be moved; it says so on stderr).
 *
 * Pool-0's domain count is the guests in it: xenbox's dom0 and service
 * domains are processes, not vCPUs of a pool.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { SCHEDULERS, XenError, type CpupoolInfo, type SchedulerName } from '@xenbox/abi';
import { cpuMapToList, evenTopology, parseCpuList } from '../xlcfg/cpulist.js';
import { emptyConfig, parseInto, type ParsedConfig } from '../xlcfg/parser.js';
import { settingString, settingStringOrList } from '../xlcfg/typed-values.js';
import { findDomain, type XlContext } from './context.js';
import { XlFailure, libxl } from './failure.js';

/** main_cpupoollist(): `%-19s` Name, then "CPUs   Sched     Active   Domain count" or "CPU list". */
export function formatCpupoolList(pools: CpupoolInfo[], cpuList: boolean): string {
  let out = `${'Name'.padEnd(19)}${cpuList ? 'CPU list' : 'CPUs   Sched     Active   Domain count'}\n`;
  for (const p of pools) {
    out += p.name.padEnd(19);
    out += cpuList ? p.cpus.join(',') : `${String(p.cpus.length).padStart(3)} ${p.sched.padStart(9)}       y       ${String(p.domains.length).padStart(4)}`;
    out += '\n';
  }
  return out;
}

export async function xlCpupoolList(ctx: XlContext, pool: string | undefined, cpuList: boolean): Promise<string> {
  const pools = await ctx.hv.call('sysctl.cpupool_op.info', {});
  const shown = pool === undefined ? pools : pools.filter((p) => p.name === pool);
  if (pool !== undefined && shown.length === 0) throw new XlFailure(`Pool '${pool}' does not exist`);
  return formatCpupoolList(shown, cpuList);
}

/** libxl_cpupool_qualifier_to_cpupoolid: a name, or a pool id. */
async function poolByQualifier(ctx: XlContext, q: string): Promise<CpupoolInfo> {
  const p = (await ctx.hv.call('sysctl.cpupool_op.info', {})).find((x) => x.name === q || String(x.poolid) === q);
  if (!p) throw new XlFailure(`unknown cpupool '${q}'`);
  return p;
}

/** parse_cpurange() against the host's pCPUs. */
async function cpuRange(ctx: XlContext, spec: string): Promise<number[]> {
  const phys = await ctx.hv.call('sysctl.physinfo', {});
  try {
    return cpuMapToList(parseCpuList(spec, evenTopology(phys.nr_cpus, phys.nr_nodes)));
  } catch (e) {
    throw new XlFailure(e instanceof XenError ? e.detail : (e as Error).message);
  }
}

// ------------------------------------------------------------------ create

/**
 * The config of cpupool-create: a file and/or KEY=VALUE arguments appended
 * to it (main_cpupoolcreate).  An argument whose value is not valid xl.cfg
 * syntax (`name=pool1`, as the shell leaves `name="pool1"`) is taken as a string.
 */
export function cpupoolConfig(file: string | undefined, args: string[]): ParsedConfig {
  const source = file ?? 'command line';
  const config = emptyConfig(source);
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new XlFailure(`Failed to read config file: ${file}: ${(e as Error).message}`);
    }
    parseOrFail(config, text, file);
  }
  for (const arg of args) {
    const eq = arg.indexOf('=');
    try {
      parseInto(config, arg + '\n', source);
    } catch {
      parseOrFail(config, `${arg.slice(0, eq)}=${JSON.stringify(arg.slice(eq + 1))}\n`, source);
    }
  }
  return config;
}

function parseOrFail(config: ParsedConfig, text: string, source: string): void {
  try {
    parseInto(config, text, source);
  } catch (e) {
    throw new XlFailure(`Failed to parse config file: ${(e as Error).message}`);
  }
}

export interface CpupoolCreateOptions {
  file?: string;
  dryrun?: boolean;
}

/** main_cpupoolcreate(): name=, sched=, cpus= (a list of CPUs or a CPULIST string), nodes=. */
export async function xlCpupoolCreate(ctx: XlContext, positional: string[], o: CpupoolCreateOptions): Promise<string> {
  let file = o.file;
  const extra: string[] = [];
  for (const a of positional) {
    if (a.includes('=')) extra.push(a);
    else if (file === undefined) file = a;
    else throw new XlFailure('cpupool-create: more than one config file given (usage: xl cpupool-create [-n] [-f FILE] [KEY=VALUE ...])');
  }
  const config = cpupoolConfig(file, extra);
  const setting = (k: string) => config.settings.get(k);
  const name = setting('name') ? settingString(setting('name')!) : file !== undefined ? basename(file) : undefined;
  if (name === undefined) throw new XlFailure('Missing cpupool name!');
  const pools = await ctx.hv.call('sysctl.cpupool_op.info', {});
  if (pools.some((p) => p.name === name)) throw new XlFailure(`Pool name "${name}" already exists`);
  const schedText = setting('sched') ? settingString(setting('sched')!) : 'credit2';
  if (!(SCHEDULERS as readonly string[]).includes(schedText)) throw new XlFailure('Unknown scheduler');
  const sched = schedText as SchedulerName;
  const cpus = await wantedCpus(ctx, config, pools);
  let out = `Using config file "${config.source}"\ncpupool name:   ${name}\nscheduler:      ${sched}\nnumber of cpus: ${cpus.length}\n`;
  if (!o.dryrun) {
    try {
      await ctx.hv.call('sysctl.cpupool_op.create', { name, sched, cpus });
    } catch (e) {
      if (!(e instanceof XenError)) throw e;
      process.stdout.write(out);
      out = '';
      throw new XlFailure(`libxl: error: ${e.detail}\nerror on creating cpupool`);
    }
  }
  return out;
}

/** cpus= / nodes=: each CPU must be free (in no pool): "cpu N illegal or not free". */
async function wantedCpus(ctx: XlContext, config: ParsedConfig, pools: CpupoolInfo[]): Promise<number[]> {
  const used = new Set(pools.flatMap((p) => p.cpus));
  const phys = await ctx.hv.call('sysctl.physinfo', {});
  const topo = evenTopology(phys.nr_cpus, phys.nr_nodes);
  const nodes = config.settings.get('nodes');
  if (nodes) {
    const list = settingStringOrList(nodes);
    const cpus = (Array.isArray(list) ? list : [list]).flatMap((n) => topo.nodes[Number(n)] ?? []).filter((c) => !used.has(c));
    if (cpus.length === 0) throw new XlFailure('no free cpu found');
    return cpus;
  }
  const spec = config.settings.get('cpus');
  if (!spec) return [];
  const v = settingStringOrList(spec);
  let cpus: number[];
  if (Array.isArray(v)) cpus = v.map((x) => parseInt(x, 10));
  else {
    try {
      cpus = cpuMapToList(parseCpuList(v, topo));
    } catch (e) {
      throw new XlFailure(e instanceof XenError ? e.detail : (e as Error).message);
    }
  }
  for (const c of cpus) if (!(c >= 0 && c < phys.nr_cpus) || used.has(c)) throw new XlFailure(`cpu ${c} illegal or not free`);
  return cpus;
}

// ------------------------------------------------------------------ the rest

export async function xlCpupoolDestroy(ctx: XlContext, pool: string): Promise<void> {
  const p = await poolByQualifier(ctx, pool);
  await libxl(`Can't destroy cpupool '${pool}'`, () => ctx.hv.call('sysctl.cpupool_op.destroy', { name: p.name }));
}

export async function xlCpupoolRename(ctx: XlContext, pool: string, newName: string): Promise<void> {
  const p = await poolByQualifier(ctx, pool);
  await libxl(`Can't rename cpupool '${pool}'`, () => ctx.hv.call('sysctl.cpupool_op.rename', { name: p.name, newname: newName }));
}

/** main_cpupoolcpuadd(): a failure is reported, but xl still exits 0. */
export async function xlCpupoolCpuAdd(ctx: XlContext, pool: string, spec: string): Promise<void> {
  const cpus = await cpuRange(ctx, spec);
  const p = await poolByQualifier(ctx, pool);
  await libxl(`some cpus may not have been added to ${pool}`, () => ctx.hv.call('sysctl.cpupool_op.addcpu', { name: p.name, cpus })).catch(exitZero);
}

/** main_cpupoolcpuremove(): a failure is reported, but xl still exits 0. */
export async function xlCpupoolCpuRemove(ctx: XlContext, pool: string, spec: string): Promise<void> {
  const cpus = await cpuRange(ctx, spec);
  const p = await poolByQualifier(ctx, pool);
  const msg = `Some cpus may have not or only partially been removed from '${pool}'.\nIf a cpu can't be added to another cpupool, add it to '${pool}' again and retry.`;
  await libxl(msg, () => ctx.hv.call('sysctl.cpupool_op.rmcpu', { name: p.name, cpus })).catch(exitZero);
}

function exitZero(e: unknown): never {
  throw e instanceof XlFailure ? new XlFailure(e.message, 0) : e;
}

/** main_cpupoolmigrate(). */
export async function xlCpupoolMigrate(ctx: XlContext, dom: string, pool: string): Promise<void> {
  const d = await findDomain(ctx, dom).catch(() => {
    throw new XlFailure(`unknown domain '${dom}'`);
  });
  const p = await poolByQualifier(ctx, pool);
  await libxl(`libxl_cpupool_movedomain failed`, () => ctx.hv.call('sysctl.cpupool_op.movedomain', { name: p.name, domid: d.domid }));
}
