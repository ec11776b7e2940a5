/**
 * `xenbox chaos --target NAME --every 2s --for 60s`: kill a service again
 * and again, as faults would, and report how fast the stack brings it back
 * (DESIGN §11; the kind of experiment Xoar ran on restartable driver VMs).
 * Every kill and every recovery is printed with a timestamp; the supervisor
 * logs them too and keeps the recovery times (`xenbox status --json`).
 */
import { XenError, type RestartMetrics, type ServiceStatus } from '@xenbox/abi';
import { writeFileSync } from 'node:fs';
import { callSupervisor } from './control-client.js';
import { renderChaosSvg, type PlotEvent } from './chaos-plot.js';
import { ThroughputSampler } from './chaos-sampler.js';

export interface ChaosOptions {
  target: string;
  everyMs: number;
  forMs: number;
  /** Each interval is everyMs × (1 ± jitter), so kills land at varied moments. */
  jitter: number;
  seed: number;
  /** Write an SVG of the guests' throughput with kills and recoveries marked (chaos-plot.ts). */
  plot?: string;
  /** Sampling period for the plot (default 250 ms). */
  sampleMs?: number;
  /** Stop after this many kills, even before forMs is over. */
  kills?: number;
}

export interface ChaosReport {
  kills: number;
  recovered: number;
  recoveryMs: number[];
  /** The supervisor's record of each of this run's restarts: time to ready, to devices reconnected, to the first guest I/O, requests re-issued. */
  restarts: RestartMetrics[];
  /** Seconds since the start of the run of each kill and recovery. */
  events: PlotEvent[];
}

/** "500ms", "2s", "1.5s", "1m" -> ms. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new XenError('EINVAL', `${what}: '${text}' is not a duration (e.g. 500ms, 2s, 1m)`);
  const n = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  if (n <= 0) throw new XenError('EINVAL', `${what}: must be more than zero`);
  return n;
}

/** mulberry32: a small seeded generator, so a chaos run can be repeated. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const stamp = () => new Date().toISOString().slice(11, 23);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function serviceStatus(runDir: string, name: string): Promise<ServiceStatus> {
  const st = await callSupervisor(runDir, 'status', {});
  const s = st.services.find((x) => x.name === name);
  if (!s) throw new XenError('ENOENT', `no service named '${name}' (have: ${st.services.map((x) => x.name).join(', ')})`);
  return s;
}

/** Wait until the service is ready again after a kill; its recovery time, or null if it did not come back in time. */
async function awaitRecovery(runDir: string, name: string, before: ServiceStatus, timeoutMs: number): Promise<ServiceStatus | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const s = await serviceStatus(runDir, name);
    if (s.state === 'ready' && s.pid !== before.pid && s.recoveryMs.length > before.recoveryMs.length) return s;
    if (s.state === 'failed') return null;
    await sleep(25);
  }
  return null;
}

/**
 * The restart records made during the run.  A record's first guest I/O can
 * come a little after its recovery, so wait briefly for the last one.
 */
async function restartsSince(runDir: string, name: string, before: number): Promise<RestartMetrics[]> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const recs = (await serviceStatus(runDir, name)).restartMetrics.slice(before);
    const last = recs[recs.length - 1];
    if (!last || last.devices === 0 || last.firstIoMs !== null || Date.now() > deadline) return recs;
    await sleep(100);
  }
}

export async function runChaos(runDir: string, o: ChaosOptions, print: (line: string) => void): Promise<ChaosReport> {
  if (o.target === 'hypervisor') throw new XenError('EINVAL', 'killing the hypervisor takes the whole stack down; pick a service domain');
  const random = seededRandom(o.seed);
  const end = Date.now() + o.forMs;
  const report: ChaosReport = { kills: 0, recovered: 0, recoveryMs: [], restarts: [], events: [] };
  const recordsBefore = (await serviceStatus(runDir, o.target)).restartMetrics.length;
  const t0 = Date.now();
  const at = () => (Date.now() - t0) / 1000;
  const sampler = o.plot ? await ThroughputSampler.start(runDir, o.sampleMs ?? 250, t0) : null;
  print(`${stamp()} chaos: killing ${o.target} every ${o.everyMs} ms (±${Math.round(o.jitter * 100)} %) for ${o.forMs} ms, seed ${o.seed}`);
  while (Date.now() < end && !(o.kills !== undefined && report.kills >= o.kills)) {
    await sleep(o.everyMs * (1 + o.jitter * (2 * random() - 1)));
    if (Date.now() >= end) break;
    const before = await serviceStatus(runDir, o.target);
    if (before.state !== 'ready') continue;
    const killed = await callSupervisor(runDir, 'kill', { name: o.target });
    report.kills++;
    report.events.push({ t: at(), kind: 'kill', label: `kill ${o.target} (domid ${before.domid})` });
    print(`${stamp()} kill ${o.target} (pid ${killed.pid}, domid ${before.domid})`);
    const after = await awaitRecovery(runDir, o.target, before, Math.max(10_000, o.everyMs * 5));
    if (!after) {
      print(`${stamp()} ${o.target} did not come back`);
      continue;
    }
    const ms = after.recoveryMs[after.recoveryMs.length - 1]!;
    report.recovered++;
    report.recoveryMs.push(ms);
    report.events.push({ t: at(), kind: 'recovered', label: `${o.target} ready as domid ${after.domid} after ${ms} ms` });
    print(`${stamp()} ${o.target} back as domid ${after.domid}, pid ${after.pid}, after ${ms} ms`);
  }
  if (sampler && o.plot) {
    // A little tail after the last kill shows the recovery of guest I/O.
    await sleep(Math.min(2000, o.everyMs));
    const series = await sampler.stop();
    writeFileSync(o.plot, renderChaosSvg({ title: `xenbox chaos: ${o.target} killed ${report.kills} times`, unit: 'MB/s', series, events: report.events }));
    print(`${stamp()} plot of ${series.length} guest series written to ${o.plot}`);
  }
  const r = report.recoveryMs;
  print(`${stamp()} chaos: ${report.kills} kills of ${o.target}, ${report.recovered} recovered; recovery p50 ${percentile(r, 50)} ms, p99 ${percentile(r, 99)} ms, max ${r.length ? Math.max(...r) : NaN} ms`);
  report.restarts = await restartsSince(runDir, o.target, recordsBefore);
  const io = report.restarts.flatMap((x) => (x.firstIoMs === null ? [] : [x.firstIoMs]));
  const reissued = report.restarts.reduce<number | null>((n, x) => (x.reissued === null ? n : (n ?? 0) + x.reissued), null);
  print(
    `${stamp()} guest I/O: first completed ${io.length ? `p50 ${percentile(io, 50)} ms, p99 ${percentile(io, 99)} ms after the kill` : 'never (no guest I/O on its devices)'}` +
      ` (${io.length} of ${report.restarts.length} restarts)${reissued === null ? '' : `; ${reissued} request(s) re-issued by the frontends`}`,
  );
  return report;
}
