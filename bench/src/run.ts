/**
 * `pnpm bench [--json] [NAME...]`: run all benchmarks (files `*.bench.js`
 * beside this one) or those named, and print a table per benchmark, or with
 * --json one JSON object per benchmark on its own line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MALLOC_TUNING_ENV } from '@xenbox/libxen';
import type { Benchmark, BenchResult } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Benchmark names, from the files: `<name>.bench.js`. */
function benchNames(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith('.bench.js'))
    .map((f) => f.slice(0, -'.bench.js'.length))
    .sort();
}

/** Import one benchmark's module (only that one: see main). */
async function load(name: string): Promise<Benchmark> {
  const mod = (await import(pathToFileURL(join(here, `${name}.bench.js`)).href)) as { benchmark?: Benchmark };
  if (!mod.benchmark) throw new Error(`${name}.bench.js does not export 'benchmark'`);
  if (mod.benchmark.name !== name) throw new Error(`${name}.bench.js names its benchmark '${mod.benchmark.name}'`);
  return mod.benchmark;
}

function fmt(n: number | null): string {
  if (n === null) return '-';
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return n.toPrecision(4);
}

function printTable(name: string, results: BenchResult[]): void {
  const rows = [['metric', 'value', 'unit', 'baseline', 'ratio', 'target']];
  for (const r of results) rows.push([r.metric, fmt(r.value), r.unit, fmt(r.baseline), r.ratio === null ? '-' : `${r.ratio.toFixed(3)}x`, r.target ?? '-']);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  console.log(`\n== ${name} ==`);
  for (const row of rows) console.log(row.map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
}

/**
 * Run under the same malloc settings the stack's processes get (libxen
 * malloc-tuning.ts), so benchmark clients and baselines are on equal terms
 * with the processes they measure: re-exec once with them set.
 */
function reexecWithMallocTuning(): boolean {
  if (Object.entries(MALLOC_TUNING_ENV).every(([k, v]) => process.env[k] === v)) return false;
  const r = spawnSync(process.execPath, process.argv.slice(1), { stdio: 'inherit', env: { ...process.env, ...MALLOC_TUNING_ENV } });
  process.exit(r.status ?? 1);
}

async function main(): Promise<void> {
  if (reexecWithMallocTuning()) return;
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const names = argv.filter((a) => !a.startsWith('--'));
  const known = benchNames();
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) {
    console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${known.join(', ')}`);
    process.exit(2);
  }
  const chosen = names.length ? names : known;
  // Each benchmark runs in a process that imported only its own module: what
  // one imports changes V8's heap sizing for the whole process (importing the
  // toolstack gave the gnttab client ~10x the mark-compacts), so a
  // benchmark's figures must not depend on which others ran beside it.
  if (chosen.length > 1) {
    let failed = 0;
    for (const name of chosen) {
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), name, ...argv.filter((a) => a.startsWith('--'))], { stdio: 'inherit' });
      if (r.status !== 0) failed++;
    }
    process.exit(failed ? 1 : 0);
  }
  const b = await load(chosen[0]!);
  const tmpDir = mkdtempSync(join(tmpdir(), `xb-bench-${b.name}-`));
  try {
    const results = await b.run({ tmpDir, progress: (m) => process.stderr.write(`[${b.name}] ${m}\n`) });
    if (json) console.log(JSON.stringify({ bench: b.name, results }));
    else printTable(`${b.name}: ${b.description}`, results);
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
