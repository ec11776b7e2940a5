import { describe, expect, it } from 'vitest';
import { cpuMapToList, evenTopology, formatCpuMap, parseCpuList, validateCpuListSyntax } from '../../src/xlcfg/cpulist.js';

/** The host of check-xl-vcpupin-parse.data-example: 16 CPUs, 2 nodes of 8. */
const HOST = evenTopology(16, 2);

/** `xl -N vcpu-pin 0 all SPEC`: "cpumap: ..." or the error. */
function vcpuPinDryRun(spec: string): { out: string } | { error: string } {
  try {
    return { out: `cpumap: ${formatCpuMap(parseCpuList(spec, HOST))}` };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

// check-xl-vcpupin-parse.data-example, all 34 lines (spec, expected output or null for rc != 0).
const VECTORS: Array<[string, string | null]> = [
  ['foo', null],
  ['all', 'all'],
  ['nodes:all', 'all'],
  ['all,nodes:all', 'all'],
  ['all,^nodes:0,all', 'all'],
  ['^0', 'none'],
  ['0', '0'],
  ['9', '9'],
  ['6', '6'],
  ['0', '0'],
  ['all,^12', '0-11,13-15'],
  ['all,^6', '0-5,7-15'],
  ['all,^3', '0-2,4-15'],
  ['all,^7', '0-6,8-15'],
  ['13-15', '13-15'],
  ['7', '7'],
  ['3-5', '3-5'],
  ['8-11', '8-11'],
  ['nodes:1', '8-15'],
  ['nodes:0', '0-7'],
  ['nodes:0', '0-7'],
  ['nodes:0', '0-7'],
  ['all,^nodes:0', '8-15'],
  ['all,^nodes:0', '8-15'],
  ['all,^nodes:1', '0-7'],
  ['all,^nodes:1', '0-7'],
  ['nodes:1-1', '8-15'],
  ['nodes:1-1', '8-15'],
  ['nodes:0-1', 'all'],
  ['nodes:0-0', '0-7'],
  ['nodes:1,^8', '9-15'],
  ['nodes:0,^6', '0-5,7'],
  ['nodes:1,^9', '8,10-15'],
  ['nodes:0,^5', '0-4,6-7'],
];

describe('CPULIST: the 34 vcpupin vectors (16 CPUs, 2 nodes)', () => {
  it('has all 34', () => expect(VECTORS).toHaveLength(34));
  it.each(VECTORS)('%s', (spec, expected) => {
    const r = vcpuPinDryRun(spec);
    if (expected === null) expect(r).toHaveProperty('error');
    else expect(r).toEqual({ out: `cpumap: ${expected}` });
  });
});

describe('CPULIST semantics', () => {
  it('applies items left to right, so a later item undoes an earlier one', () => {
    expect(formatCpuMap(parseCpuList('0-3,^1,1', HOST))).toBe('0-3');
    expect(formatCpuMap(parseCpuList('^1,0-3', HOST))).toBe('0-3');
  });

  it('node: and nodes: are the same, and ^node: removes a whole node', () => {
    expect(formatCpuMap(parseCpuList('all,^node:1', HOST))).toBe('0-7');
    expect(formatCpuMap(parseCpuList('node:0,nodes:1', HOST))).toBe('all');
  });

  it('the doc example 0-3,5,^1 is CPUs 0, 2, 3 and 5', () => {
    expect(cpuMapToList(parseCpuList('0-3,5,^1', HOST))).toEqual([0, 2, 3, 5]);
  });

  it('skips empty items, as strtok does', () => {
    expect(formatCpuMap(parseCpuList(',1,,2,', HOST))).toBe('1-2');
  });

  it.each([
    ['^all', `can't combine "^" and "all"`],
    ['^nodes:all', `can't combine "^" and "all"`],
    ['3-1', 'invalid pcpu range: `3-1\''],
    ['1-', 'invalid pcpu range'],
    ['-1', 'invalid pcpu range'],
    ['x1', 'invalid pcpu range'],
    ['1.5', 'invalid pcpu range'],
    ['node:2', 'NUMA node 2 in `node:2\' does not exist (the host has 2 nodes)'],
    ['16', 'CPU 16 in `16\' does not exist (the host has 16 CPUs, 0-15)'],
    ['', 'empty CPU list'],
  ])('%j is refused: %s', (spec, msg) => {
    expect(() => parseCpuList(spec, HOST)).toThrow(msg);
  });

  it('checks the syntax without a host (for config files)', () => {
    expect(validateCpuListSyntax('0-3,^node:1,nodes:all')).toBeUndefined();
    expect(validateCpuListSyntax('0-3,fish')).toContain('invalid pcpu range');
  });

  it('prints none, all, and runs as xl does', () => {
    expect(formatCpuMap([false, false])).toBe('none');
    expect(formatCpuMap([true])).toBe('all');
    expect(formatCpuMap([true, true, false])).toBe('0-1');
    expect(formatCpuMap([false, true, true])).toBe('1-2');
    expect(formatCpuMap([true, false, true])).toBe('0,2');
  });
});
