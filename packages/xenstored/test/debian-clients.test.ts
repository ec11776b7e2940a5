/**
 * Xen's own clients (Debian's xenstore-utils and xen-utils-4.17) against
 * xenbox's xenstored, through XENSTORED_PATH, as DESIGN §8 promises.
 */
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { haveBinary, runXenTool, startXenstored, XEN_BIN, type TestStack } from './helpers.js';

const XS_UTILS = '/usr/bin/xenstore-write';
const TEST_XENSTORE = `${XEN_BIN}/test-xenstore`;
const missingUtils = !haveBinary(XS_UTILS);

describe.skipIf(missingUtils)('Debian xenstore-utils against xenstored (skipped: xenstore-utils not installed; apt-get install xenstore-utils)', () => {
  let s: TestStack;
  const xs = (tool: string, ...args: string[]) => runXenTool(s.socketPath, `/usr/bin/xenstore-${tool}`, args);
  beforeEach(async () => {
    s = await startXenstored();
  });
  afterEach(async () => {
    await s.close();
  });

  it('xenstore-write then xenstore-read returns the value', async () => {
    expect((await xs('write', '/local/domain/0/name', 'Domain-0', '/vm/x', 'hello world')).code).toBe(0);
    const r = await xs('read', '/local/domain/0/name', '/vm/x');
    expect(r).toMatchObject({ code: 0, stdout: 'Domain-0\nhello world\n' });
  });

  it('xenstore-read of a missing node fails', async () => {
    const r = await xs('read', '/no/such');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('couldn\'t read path /no/such');
  });

  it('xenstore-ls shows the initial tree and written nodes in creation order', async () => {
    await xs('write', '/a/b', '1', '/a/c', '2');
    const r = await xs('ls');
    expect(r.stdout).toBe(['tool = ""', ' xenstored = ""', 'a = ""', ' b = "1"', ' c = "2"', ''].join('\n'));
  });

  it('xenstore-ls -p shows permissions as on real Xen', async () => {
    await xs('write', '/a/b', '1');
    expect((await xs('chmod', '/a/b', 'n0', 'r5', 'b7')).code).toBe(0);
    const r = await xs('ls', '-p', '/a');
    expect(r.stdout).toMatch(/^b = "1" [ .]+ \(n0,r5,b7\)\n$/);
    expect((await xs('ls', '-p', '/')).stdout).toMatch(/^tool = "" [ .]+ \(n0\)\n xenstored = "" [ .]+ \(n0\)\n/);
  });

  it('xenstore-list, xenstore-exists and xenstore-rm', async () => {
    await xs('write', '/d/x', '1', '/d/y', '2');
    expect((await xs('list', '/d')).stdout).toBe('x\ny\n');
    expect((await xs('exists', '/d/x')).code).toBe(0);
    expect((await xs('exists', '/d/z')).code).not.toBe(0);
    expect((await xs('rm', '/d')).code).toBe(0);
    expect((await xs('exists', '/d')).code).not.toBe(0);
  });

  it('xenstore-chmod -r applies permissions to the subtree', async () => {
    await xs('write', '/t/a/b', 'v');
    expect((await xs('chmod', '-r', '/t', 'b3')).code).toBe(0);
    expect((await xs('ls', '-p', '/t')).stdout).toMatch(/\(b3\)\n.*\(b3\)\n$/s);
  });

  it('xenstore-watch prints events as they happen', async () => {
    await xs('write', '/w/x', '0');
    const watcher = spawn('/usr/bin/xenstore-watch', ['/w'], { env: { ...process.env, XENSTORED_PATH: s.socketPath } });
    let out = '';
    watcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const waitFor = async (line: string) => {
      for (let i = 0; i < 100 && !out.split('\n').includes(line); i++) await new Promise((r) => setTimeout(r, 20));
      expect(out.split('\n')).toContain(line);
    };
    try {
      await waitFor('/w');
      await s.dom0.write('/w/x', '1');
      await waitFor('/w/x');
      await s.dom0.write('/w/new/deep', '2');
      await waitFor('/w/new/deep');
    } finally {
      watcher.kill();
    }
  });

  it.skipIf(!haveBinary(TEST_XENSTORE))('test-xenstore passes all its tests (skipped: xen-utils-4.17 not installed)', async () => {
    const r = await runXenTool(s.socketPath, TEST_XENSTORE, [], 20_000);
    expect(r.stdout).not.toContain('failed');
    expect(r.code).toBe(0);
    for (const t of ['read 1', 'write 2000', 'dir', 'rm dir', 'ta rmw', 'ta err']) expect(r.stdout).toContain(t);
  });

  it.skipIf(!haveBinary(`${XEN_BIN}/xenstore-control`))('xenstore-control prints quota settings like C xenstored', async () => {
    const r = await runXenTool(s.socketPath, `${XEN_BIN}/xenstore-control`, ['quota']);
    expect(r.stdout).toContain('nodes            :     1000 Nodes per domain');
    expect(r.stdout).toContain('watches          :      128 Watches per domain');
  });
});
