/**
 * `xl` against a running stack: real xl's output columns and exit codes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestStack } from './helpers/stack.js';

let stack: TestStack;

const xl = (...args: string[]) => stack.xl(...args);

beforeAll(async () => {
  stack = await TestStack.up('xl');
});
afterAll(async () => {
  await stack?.destroy();
});

describe('xl list', () => {
  it("prints every domain in xl's columns", async () => {
    const r = await xl('list');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('Name                                        ID   Mem VCPUs\tState\tTime(s)');
    expect(lines[1]).toMatch(/^Domain-0 {32} {5}0 +\d+ +1 {5}[r-][b-][p-][s-][-rscwS][d-] +\d+\.\d$/);
    const nb = await stack.service('netback');
    const row = lines.find((l) => l.startsWith('netback '))!;
    // %-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f
    expect(row.slice(40, 46)).toBe(String(nb.domid).padStart(6));
    expect(row).toHaveLength(40 + 6 + 6 + 6 + 5 + 6 + 2 + 8);
  });

  it('names a domain that does not exist and exits 1', async () => {
    const r = await xl('list', 'nosuch');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("Error: Domain 'nosuch' does not exist.\n");
    expect(r.stdout).toBe('');
  });
});

describe('xl domid / domname / uptime / dmesg / info', () => {
  it('converts between names and domids', async () => {
    const bb = await stack.service('blkback');
    expect((await xl('domid', 'blkback')).stdout).toBe(`${bb.domid}\n`);
    expect((await xl('domname', String(bb.domid))).stdout).toBe('blkback\n');
    expect((await xl('domname', 'x')).stderr).toContain('Invalid domain id.');
  });

  it('prints uptimes as xl does', async () => {
    const r = await xl('uptime');
    expect(r.stdout.split('\n')[0]).toBe(`${'Name'.padEnd(33)}   ID Uptime`);
    expect(r.stdout).toMatch(/\nnetback {27} +\d+ +0:00:\d\d\n/);
  });

  it('reads the hypervisor console, lifecycle lines included', async () => {
    const r = await xl('dmesg');
    expect(r.stdout).toMatch(/^\(XEN\) Xen version 4\.17/);
    expect(r.stdout).toContain("created domain 'netback'");
  });

  it('prints host information as key : value lines', async () => {
    const r = await xl('info');
    expect(r.stdout).toMatch(/^host {19}: \S+\n/);
    expect(r.stdout).toMatch(/\nxen_major {14}: 4\n/);
    expect((await xl('info', 'xen_minor')).stdout).toBe('17\n');
  });
});

describe('xl pause / unpause / destroy', () => {
  it('pauses and unpauses a domain (state flag p)', async () => {
    expect((await xl('pause', 'blkback')).code).toBe(0);
    expect((await xl('list', 'blkback')).stdout.split('\n')[1]).toMatch(/ {5}-?[r-][b-]p[s-][-rscwS][d-] /);
    expect((await xl('unpause', 'blkback')).code).toBe(0);
    expect((await xl('list', 'blkback')).stdout.split('\n')[1]).toMatch(/ {5}[r-][b-]-[s-][-rscwS][d-] /);
  });

  it('destroying a driver domain makes the supervisor start a new one', async () => {
    const nb = await stack.service('netback');
    expect((await xl('destroy', 'netback')).code).toBe(0);
    const next = await stack.waitFor('netback', (s) => s.state === 'ready' && s.domid !== nb.domid, 3000);
    expect((await xl('domid', 'netback')).stdout).toBe(`${next.domid}\n`);
  });

  it('says plainly which xl commands xenbox does not implement yet', async () => {
    const r = await xl('migrate', 'netback', 'otherhost');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("'migrate' is a real xl command that xenbox does not implement yet");
  });
});
