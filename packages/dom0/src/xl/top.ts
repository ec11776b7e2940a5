/**
 * `xl top`: real xl runs xentop; xenbox prints one batch of xentop's
 * domain table (tools/xentop/xentop.c, `xentop -b`: do_header() and
 * do_domain(), no summary in batch mode), with CPU(%) measured between two
 * samples `delay` seconds apart (xentop's get_cpu_pct()).
 *
 * Columns: NAME STATE CPU(sec) CPU(%) MEM(k) MEM(%) MAXMEM(k) MAXMEM(%) VCPUS
 * NETS NETTX(k) NETRX(k) VBDS VBD_OO VBD_RD VBD_WR VBD_RSECT VBD_WSECT SSID.
 * Networks and block devices are not counted yet (xenbox guests have none).
 */
import type { DomainInfo } from '@xenbox/abi';
import type { XlContext } from './context.js';

/** xentop.c fields[]: header and default width, in order. */
const FIELDS: Array<[string, number]> = [
  ['NAME', 10], ['STATE', 6], ['CPU(sec)', 10], ['CPU(%)', 6], ['MEM(k)', 10], ['MEM(%)', 6], ['MAXMEM(k)', 10], ['MAXMEM(%)', 9],
  ['VCPUS', 5], ['NETS', 4], ['NETTX(k)', 8], ['NETRX(k)', 8], ['VBDS', 4], ['VBD_OO', 8], ['VBD_RD', 8], ['VBD_WR', 8],
  ['VBD_RSECT', 10], ['VBD_WSECT', 10], ['SSID', 4],
];

/** do_header(): every header right-aligned in its width, one space between. */
export function topHeader(): string {
  return FIELDS.map(([h, w]) => h.padStart(w)).join(' ') + '\n';
}

/** print_state(): d s b c p r, each its letter or '-' (from xl list's r b p s <reason> d). */
export function xentopState(d: DomainInfo): string {
  const crashed = d.shutdown === 'crash';
  return [
    d.dying ? 'd' : '-',
    d.shutdown !== null && !crashed ? 's' : '-',
    d.state[1] === 'b' ? 'b' : '-',
    crashed ? 'c' : '-',
    d.paused ? 'p' : '-',
    d.state[0] === 'r' ? 'r' : '-',
  ].join('');
}

export interface TopSample {
  domains: DomainInfo[];
  /** Host memory in KiB (xenstat_node_tot_mem / 1024). */
  totalKiB: number;
}

/** do_domain(): one row; cpuPct from get_cpu_pct(). */
export function topRow(d: DomainInfo, cpuPct: number, totalKiB: number): string {
  const memKiB = d.totPages * 4;
  const maxKiB = d.maxPages * 4;
  const n = (v: number, w: number) => String(v).padStart(w);
  const cols = [
    d.name.slice(0, 10).padStart(10),
    xentopState(d),
    n(Math.floor(d.cpuTimeNs / 1e9), 10),
    cpuPct.toFixed(1).padStart(6),
    n(memKiB, 10),
    ((memKiB / totalKiB) * 100).toFixed(1).padStart(6),
    n(maxKiB, 10),
    ((maxKiB / totalKiB) * 100).toFixed(1).padStart(9),
    n(d.maxVcpus, 5),
    n(0, 4), n(0, 8), n(0, 8), n(0, 4), n(0, 8), n(0, 8), n(0, 8), n(0, 10), n(0, 10), n(0, 4),
  ];
  return cols.join(' ') + '\n';
}

/** One batch: domains sorted as xentop's default sort field (the name, case-insensitively). */
export function formatTop(prev: TopSample | null, cur: TopSample, elapsedUs: number): string {
  const before = new Map((prev?.domains ?? []).map((d) => [d.domid, d.cpuTimeNs] as const));
  const rows = [...cur.domains].sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
  return topHeader() + rows.map((d) => {
    const was = before.get(d.domid);
    const pct = was === undefined || elapsedUs <= 0 ? 0 : (d.cpuTimeNs - was) / 10 / elapsedUs;
    return topRow(d, pct, cur.totalKiB);
  }).join('');
}

async function sample(ctx: XlContext): Promise<TopSample> {
  const [domains, phys] = await Promise.all([ctx.hv.call('sysctl.getdomaininfolist', {}), ctx.hv.call('sysctl.physinfo', {})]);
  return { domains, totalKiB: phys.total_pages * 4 };
}

/** `xl top [-d SECONDS]`: two samples `delay` apart, the second printed. */
export async function xlTop(ctx: XlContext, delaySeconds: number): Promise<string> {
  const t0 = performance.now();
  const first = await sample(ctx);
  await new Promise((r) => setTimeout(r, delaySeconds * 1000));
  const t1 = performance.now();
  const second = await sample(ctx);
  return formatTop(first, second, (t1 - t0) * 1000);
}
