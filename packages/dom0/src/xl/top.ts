/**
 * `xl top`: real xl runs xentop; xenbox prints one batch of xentop's
 * domain table (tools/xentop/xentop.c, `xentop -b`: do_header() and
 * do_domain(), no summary in batch mode), with CPU(%) measured between two
 * samples `delay` seconds apart (xentop's get_cpu_pct()).
 *
 * Columns: NAME STATE CPU(sec) CPU(%) MEM(k) MEM(%) MAXMEM(k) MAXMEM(%) VCPUS
 * NETS NETTX(k) NETRX(k) VBDS VBD_OO VBD_RD VBD_WR VBD_RSECT VBD_WSECT SSID.
 * NETS/VBDS count the domain's vifs and vbds; the traffic columns add up
 * the counters its backends publish under `<backend dir>/statistics/`
 * (netback: rx_bytes/tx_bytes from the guest's side; blkback: oo_req, rd_req,
 * wr_req, rd_sect, wr_sect — the names of Linux blkback's sysfs statistics,
 * which xentop reads).
 */
import type { BlkifStatName, DomainInfo, DomId, NetifStatName } from '@xenbox/abi';
import { XenstoreClient } from '@xenbox/libxen';
import { listDevices } from '../libxl/device.js';
import type { XlContext } from './context.js';

/** What xentop shows of a domain's devices. */
export interface DeviceCounters {
  nets: number;
  netTxBytes: number;
  netRxBytes: number;
  vbds: number;
  vbdOo: number;
  vbdRd: number;
  vbdWr: number;
  vbdRsect: number;
  vbdWsect: number;
}

const NO_DEVICES: DeviceCounters = { nets: 0, netTxBytes: 0, netRxBytes: 0, vbds: 0, vbdOo: 0, vbdRd: 0, vbdWr: 0, vbdRsect: 0, vbdWsect: 0 };

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
  /** Per domain; absent = no devices (or xenstore unreachable). */
  devices?: Map<DomId, DeviceCounters>;
  /** Host memory in KiB (xenstat_node_tot_mem / 1024). */
  totalKiB: number;
}

/** do_domain(): one row; cpuPct from get_cpu_pct(). */
export function topRow(d: DomainInfo, cpuPct: number, totalKiB: number, dev: DeviceCounters = NO_DEVICES): string {
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
    n(dev.nets, 4), n(Math.floor(dev.netTxBytes / 1024), 8), n(Math.floor(dev.netRxBytes / 1024), 8),
    n(dev.vbds, 4), n(dev.vbdOo, 8), n(dev.vbdRd, 8), n(dev.vbdWr, 8), n(dev.vbdRsect, 10), n(dev.vbdWsect, 10), n(0, 4),
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
    return topRow(d, pct, cur.totalKiB, cur.devices?.get(d.domid));
  }).join('');
}

/** A backend's statistics/<name>, 0 when it publishes none. */
async function stat(xs: XenstoreClient, backendPath: string, name: BlkifStatName | NetifStatName): Promise<number> {
  const v = await xs.tryRead(`${backendPath}/statistics/${name}`);
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : 0;
}

/** Count a domain's devices and add up what their backends published. */
export async function deviceCounters(xs: XenstoreClient, domid: DomId): Promise<DeviceCounters> {
  const c = { ...NO_DEVICES };
  for (const v of await listDevices(xs, domid, 'vif')) {
    c.nets++;
    c.netTxBytes += await stat(xs, v.backendPath, 'tx_bytes');
    c.netRxBytes += await stat(xs, v.backendPath, 'rx_bytes');
  }
  for (const b of await listDevices(xs, domid, 'vbd')) {
    c.vbds++;
    c.vbdOo += await stat(xs, b.backendPath, 'oo_req');
    c.vbdRd += await stat(xs, b.backendPath, 'rd_req');
    c.vbdWr += await stat(xs, b.backendPath, 'wr_req');
    c.vbdRsect += await stat(xs, b.backendPath, 'rd_sect');
    c.vbdWsect += await stat(xs, b.backendPath, 'wr_sect');
  }
  return c;
}

async function sample(ctx: XlContext, xs: XenstoreClient | null): Promise<TopSample> {
  const [domains, phys] = await Promise.all([ctx.hv.call('sysctl.getdomaininfolist', {}), ctx.hv.call('sysctl.physinfo', {})]);
  const devices = new Map<DomId, DeviceCounters>();
  if (xs) for (const d of domains) devices.set(d.domid, await deviceCounters(xs, d.domid));
  return { domains, totalKiB: phys.total_pages * 4, devices };
}

/** `xl top [-d SECONDS]`: two samples `delay` apart, the second printed. */
export async function xlTop(ctx: XlContext, delaySeconds: number): Promise<string> {
  const xs = await XenstoreClient.connectRunDir(ctx.runDir, { timeoutMs: 5000 }).catch(() => null);
  try {
    const t0 = performance.now();
    const first = await sample(ctx, null);
    await new Promise((r) => setTimeout(r, delaySeconds * 1000));
    const t1 = performance.now();
    const second = await sample(ctx, xs);
    return formatTop(first, second, (t1 - t0) * 1000);
  } finally {
    xs?.close();
  }
}
