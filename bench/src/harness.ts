/**
 * The benchmark harness.  Each benchmark lives in its own `<name>.bench.ts`
 * and exports `benchmark: Benchmark`.  Every figure is printed beside a
 * baseline measured in the same run (raw ZeroMQ, raw file I/O, QEMU...), so
 * a ratio means something on whatever machine it ran on.
 */
export interface BenchResult {
  metric: string;
  value: number;
  unit: string;
  /** The same-run reference figure, in the same unit; null when none applies. */
  baseline: number | null;
  /** value / baseline, or null without a baseline. */
  ratio: number | null;
  /** The goal, in words ("<= 1.3x raw", ">= 100000 calls/s"). */
  target: string | null;
}

export interface BenchContext {
  /** A fresh temp directory for this benchmark, removed afterwards. */
  tmpDir: string;
  /** Print progress (goes to stderr so --json output stays clean). */
  progress(msg: string): void;
}

export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<BenchResult[]>;
}

export function result(metric: string, value: number, unit: string, baseline: number | null, target: string | null): BenchResult {
  return { metric, value, unit, baseline, ratio: baseline ? value / baseline : null, target };
}

/** Median of a list of numbers (does not modify it). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
