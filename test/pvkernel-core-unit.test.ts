/**
 * The PV kernel core's pure parts, compiled for the host with gcc and
 * AddressSanitizer/UBSan (packages/guests/pvkernel/test/core-test.c):
 * printk's formatter against the host's vsnprintf, command-line parsing,
 * the device-tree parser on the trees xenbox's toolstack writes (and on
 * every truncation and 20,000 corruptions of them: refused or parsed,
 * never a read outside the blob), the page allocator and kmalloc.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { virtDeviceTree } from '@xenbox/hypervisor';
import { REPO } from './helpers/paths.js';

const SRC = resolve(REPO, 'packages/guests/pvkernel');
const haveGcc = spawnSync('gcc', ['--version']).status === 0;
let dir = '';
let exe = '';

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(exe, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function dtb(name: string, opts: Parameters<typeof virtDeviceTree>[0]): string {
  const file = join(dir, name);
  writeFileSync(file, virtDeviceTree(opts));
  return file;
}

beforeAll(() => {
  if (!haveGcc) return;
  dir = mkdtempSync('/tmp/xb-pvk-core-');
  exe = join(dir, 'core-test');
  execFileSync('gcc', [
    '-std=gnu11', '-O1', '-g', '-Wall', '-Wextra', '-Werror', '-DPVKERNEL_HOST_TEST', '-fsanitize=address,undefined', '-fno-sanitize-recover=all',
    '-o', exe, ...['test/core-test.c', 'format.c', 'cmdline.c', 'fdt.c', 'mm.c'].map((f) => join(SRC, f)),
  ], { stdio: 'pipe' });
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!haveGcc)('pvkernel core on the host', () => {
  it('formats as printf does: %d %u %x %lx %lu %ld %llu %s %c %p, widths, zero padding, precision, h/hh, truncation', () => {
    const r = run('format');
    expect(r.stdout + r.stderr).toMatch(/format: \d+ checks, 0 failures/);
    expect(r.status).toBe(0);
  });

  it('parses the command line: words, key=value (the last wins), a bootargs not NUL-terminated, an over-long one', () => {
    const r = run('cmdline');
    expect(r.stdout + r.stderr).toMatch(/cmdline: \d+ checks, 0 failures/);
    expect(r.status).toBe(0);
  });

  it("reads RAM, timebase and bootargs from the toolstack's device trees (PVH with magic pages held back, HVM)", () => {
    const mem = 32 * 1024 * 1024 - 2 * 4096;
    const pvh = run('fdt', dtb('pvh.dtb', { memBytes: mem, harts: 1, bootargs: 'ping 10.0.0.2 ip=10.0.0.1', devices: false }));
    expect(pvh.stdout).toContain(`rc=0 ram=80000000+${mem.toString(16)} timebase=10000000`);
    expect(pvh.stdout).toContain("cmdline='ping 10.0.0.2 ip=10.0.0.1'");
    const hvm = run('fdt', dtb('hvm.dtb', { memBytes: 128 * 1024 * 1024, harts: 4, bootargs: '', devices: true }));
    expect(hvm.stdout).toContain("rc=0 ram=80000000+8000000 timebase=10000000");
    expect(hvm.stdout).toContain("cmdline=''");
  });

  it('refuses every truncated device tree and survives 20,000 corrupted ones without reading outside them', () => {
    for (const file of [dtb('f1.dtb', { memBytes: 16 << 20, harts: 1, bootargs: 'shell', devices: false }), dtb('f2.dtb', { memBytes: 64 << 20, harts: 2, bootargs: 'cpu', devices: true })]) {
      const r = run('fdt-fuzz', file);
      expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
      expect(r.stdout).toMatch(/fdt-fuzz: \d+ checks, 0 failures/);
      expect(r.status).toBe(0);
    }
  });

  it('allocates every free page once (never the device tree), zeroed; panics on double and foreign frees; kmalloc classes, reuse, exhaustion', () => {
    const r = run('mm');
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
    expect(r.stdout).toMatch(/mm: \d+ checks, 0 failures/);
    expect(r.status).toBe(0);
  });
});
