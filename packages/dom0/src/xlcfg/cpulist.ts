/**
 * CPULIST: the `cpus=` / `cpus_soft=` / `xl vcpu-pin` grammar of xl.cfg(5),
 * implemented as tools/xl/xl_parse.c parse_cpurange() / update_cpumap_range():
 *
 *   CPULIST := ITEM [ "," ITEM ]...           applied left to right
 *   ITEM    := ["^"] [ "node:" | "nodes:" ] ( "all" | N | N "-" M )
 *
 * `N`/`N-M` add CPUs, `node:N`/`nodes:N-M` add all CPUs of those NUMA nodes,
 * `all` adds every CPU, `^` removes instead (`^all` is refused, as in xl).
 * Empty items are skipped (xl splits with strtok).  A later `all` re-adds
 * everything removed before it.
 *
 * One difference from xl: xl silently ignores a CPU beyond the host's bitmap;
 * xenbox says which CPU does not exist.
 */
import { XenError } from '@xenbox/abi';

export interface CpuTopology {
  /** Number of physical CPUs, numbered 0..nrCpus-1. */
  nrCpus: number;
  /** The CPUs of each NUMA node, node i at index i. */
  nodes: number[][];
}

/** A topology of `nrCpus` CPUs split evenly over `nrNodes` nodes (node0 = the first CPUs). */
export function evenTopology(nrCpus: number, nrNodes = 1): CpuTopology {
  const per = Math.ceil(nrCpus / nrNodes);
  const nodes = Array.from({ length: nrNodes }, (_, n) => Array.from({ length: Math.max(0, Math.min(per, nrCpus - n * per)) }, (_, i) => n * per + i));
  return { nrCpus, nodes };
}

interface CpuListItem {
  remove: boolean;
  nodes: boolean;
  range: 'all' | [number, number];
}

/** parse_range(): "N" or "N-M" with M >= N, decimal, nothing after. */
function parseRange(text: string): [number, number] | undefined {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a) return undefined;
  return [a, b];
}

function parseItem(raw: string): CpuListItem | string {
  let s = raw;
  const remove = s.startsWith('^');
  if (remove) s = s.slice(1);
  let nodes = false;
  for (const prefix of ['node:', 'nodes:']) {
    if (s.startsWith(prefix)) {
      s = s.slice(prefix.length);
      nodes = true;
      break;
    }
  }
  if (s === 'all') return remove ? `can't combine "^" and "all" in \`${raw}'` : { remove, nodes, range: 'all' };
  const range = parseRange(s);
  if (!range) return `invalid pcpu range: \`${raw}' (expected N, N-M, all, node:N or nodes:N-M, optionally after ^)`;
  return { remove, nodes, range };
}

function splitItems(spec: string): string[] {
  return spec.split(',').filter((x) => x !== '');
}

/** Check a CPULIST without knowing the host; returns the problem, or undefined if it is well-formed. */
export function validateCpuListSyntax(spec: string): string | undefined {
  const items = splitItems(spec);
  if (items.length === 0) return `empty CPU list \`${spec}'`;
  for (const raw of items) {
    const item = parseItem(raw);
    if (typeof item === 'string') return item;
  }
  return undefined;
}

/**
 * Parse a CPULIST against a topology: the set CPUs, as a boolean per CPU.
 * Throws XenError EINVAL naming the bad item.
 */
export function parseCpuList(spec: string, topo: CpuTopology): boolean[] {
  const map = new Array<boolean>(topo.nrCpus).fill(false);
  const items = splitItems(spec);
  if (items.length === 0) throw new XenError('EINVAL', `empty CPU list \`${spec}'`);
  for (const raw of items) {
    const item = parseItem(raw);
    if (typeof item === 'string') throw new XenError('EINVAL', item);
    applyItem(map, item, raw, topo);
  }
  return map;
}

function applyItem(map: boolean[], item: CpuListItem, raw: string, topo: CpuTopology): void {
  if (item.range === 'all') {
    map.fill(true);
    return;
  }
  const [a, b] = item.range;
  for (let id = a; id <= b; id++) {
    const cpus = item.nodes ? topo.nodes[id] : [id];
    if (cpus === undefined) throw new XenError('EINVAL', `NUMA node ${id} in \`${raw}' does not exist (the host has ${topo.nodes.length} node${topo.nodes.length === 1 ? '' : 's'})`);
    for (const cpu of cpus) {
      if (cpu >= topo.nrCpus) throw new XenError('EINVAL', `CPU ${cpu} in \`${raw}' does not exist (the host has ${topo.nrCpus} CPUs, 0-${topo.nrCpus - 1})`);
      map[cpu] = !item.remove;
    }
  }
}

/**
 * The bitmap as xl prints it (xl_utils.c print_bitmap): "none" when empty,
 * "all" when one run starts at CPU 0 and reaches the last CPU, else runs
 * "a-b" and singletons joined by commas.
 */
export function formatCpuMap(map: readonly boolean[]): string {
  const runs: Array<[number, number]> = [];
  for (let i = 0; i < map.length; i++) {
    if (!map[i]) continue;
    const start = i;
    while (i + 1 < map.length && map[i + 1]) i++;
    runs.push([start, i]);
  }
  if (runs.length === 0) return 'none';
  if (runs.length === 1 && runs[0]![0] === 0 && runs[0]![1] === map.length - 1) return 'all';
  return runs.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
}

/** The set CPUs as numbers, ascending. */
export function cpuMapToList(map: readonly boolean[]): number[] {
  const out: number[] = [];
  map.forEach((set, i) => set && out.push(i));
  return out;
}
