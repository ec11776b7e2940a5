/**
 * The picture of a chaos run (issue #10): each guest's I/O throughput over
 * time, every kill (red) and every recovery (green) marked, as one
 * self-contained SVG a browser opens.  Written by hand: a line chart with
 * two kinds of markers is less code than wiring up a plotting library.
 */

export interface PlotSeries {
  /** "web1 disk", "web2 net" */
  name: string;
  /** Seconds since the run started, and the value (MB/s). */
  points: Array<{ t: number; v: number }>;
}

export interface PlotEvent {
  t: number;
  kind: 'kill' | 'recovered';
  label: string;
}

export interface ChaosPlot {
  title: string;
  unit: string;
  series: PlotSeries[];
  events: PlotEvent[];
}

const W = 960;
const H = 420;
const M = { left: 64, right: 180, top: 40, bottom: 48 };
const COLOURS = ['#1f77b4', '#ff7f0e', '#9467bd', '#8c564b', '#17becf', '#bcbd22', '#7f7f7f', '#e377c2'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least `v`. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function renderChaosSvg(plot: ChaosPlot): string {
  const ts = [...plot.series.flatMap((s) => s.points.map((p) => p.t)), ...plot.events.map((e) => e.t)];
  const tMax = Math.max(1, ...ts);
  const vMax = niceMax(Math.max(0, ...plot.series.flatMap((s) => s.points.map((p) => p.v))));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (t: number) => M.left + (t / tMax) * pw;
  const y = (v: number) => M.top + ph - (v / vMax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(plot.title)}</text>`);
  // Axes and grid.
  for (let i = 0; i <= 5; i++) {
    const v = (vMax * i) / 5;
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${+v.toPrecision(3)}</text>`);
  }
  for (let i = 0; i <= 10; i++) {
    const t = (tMax * i) / 10;
    out.push(`<text x="${x(t).toFixed(1)}" y="${M.top + ph + 18}" text-anchor="middle">${t.toFixed(t < 10 ? 1 : 0)}</text>`);
  }
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="black"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="black"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle">time (s)</text>`);
  out.push(`<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(plot.unit)}</text>`);
  // Kills and recoveries.
  for (const e of plot.events) {
    const colour = e.kind === 'kill' ? '#d62728' : '#2ca02c';
    out.push(`<line class="${e.kind}" x1="${x(e.t).toFixed(1)}" x2="${x(e.t).toFixed(1)}" y1="${M.top}" y2="${M.top + ph}" stroke="${colour}" stroke-dasharray="${e.kind === 'kill' ? '4 3' : '1 3'}"><title>${esc(e.label)}</title></line>`);
  }
  // One line per series.
  plot.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const pts = s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
    if (pts) out.push(`<polyline class="series" fill="none" stroke="${colour}" stroke-width="1.5" points="${pts}"><title>${esc(s.name)}</title></polyline>`);
    const ly = M.top + 16 * i;
    out.push(`<line x1="${W - M.right + 12}" x2="${W - M.right + 32}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`);
    out.push(`<text x="${W - M.right + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  const ly = M.top + 16 * plot.series.length + 8;
  out.push(`<line x1="${W - M.right + 12}" x2="${W - M.right + 32}" y1="${ly}" y2="${ly}" stroke="#d62728" stroke-dasharray="4 3"/><text x="${W - M.right + 38}" y="${ly + 4}">kill</text>`);
  out.push(`<line x1="${W - M.right + 12}" x2="${W - M.right + 32}" y1="${ly + 16}" y2="${ly + 16}" stroke="#2ca02c" stroke-dasharray="1 3"/><text x="${W - M.right + 38}" y="${ly + 20}">recovered</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/**
 * Turn cumulative counters sampled over time (e.g. sectors written) into a
 * rate series: (Δvalue × scale) / Δt between consecutive samples.  A counter
 * that went backwards (a new backend started from zero) counts from zero.
 */
export function ratesFromCounters(samples: Array<{ t: number; total: number }>, scale: number): Array<{ t: number; v: number }> {
  const out: Array<{ t: number; v: number }> = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const dt = b.t - a.t;
    if (dt <= 0) continue;
    const d = b.total >= a.total ? b.total - a.total : b.total;
    out.push({ t: b.t, v: (d * scale) / dt });
  }
  return out;
}
