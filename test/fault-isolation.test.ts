/**
 * Disaggregation in practice (issue #10): driver domains and xenstored die
 * under guests that are using them, and the guests carry on.
 *  - a PV kernel runs disktest while `xenbox chaos` kills blkback again and
 *    again: every acknowledged write is on disk (the guest verifies, and the
 *    image file on the host holds exactly the pattern), and the chaos run
 *    draws its plot;
 *  - xenstored is killed while two guests ping each other: the pings go on,
 *    the driver domains keep their pids, and xenstore works afterwards.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runDirLayout } from '@xenbox/abi';
import { patternSectors } from './helpers/disk-pattern.js';
import { REPO, XENBOX_BIN } from './helpers/paths.js';
import { TestStack } from './helpers/stack.js';

const IMAGE = resolve(REPO, 'packages/guests/images/pvkernel.elf');
const MiB = 1024 * 1024;
let stack: TestStack;
const created: string[] = [];
const xl = (...args: string[]) => stack.xl(...args);

function create(name: string, lines: Record<string, string | number>): Promise<void> {
  const file = join(stack.runDir, `${name}.cfg`);
  const body = Object.entries({ name: `"${name}"`, memory: 32, kernel: `"${IMAGE}"`, on_crash: '"preserve"', ...lines }).map(([k, v]) => `${k} = ${v}`);
  writeFileSync(file, body.join('\n') + '\n');
  return xl('create', file).then((r) => {
    expect(r.code, r.stderr).toBe(0);
    created.push(name);
  });
}

function consoleLog(name: string): string {
  const f = runDirLayout(stack.runDir).consoleLog(name);
  return existsSync(f) ? readFileSync(f, 'latin1') : '';
}

async function printed(name: string, re: RegExp, ms: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = re.exec(consoleLog(name));
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`${name} did not print ${re}; its console:\n${consoleLog(name)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `xenbox chaos ... --json`: its report. */
function chaos(args: string[]): Promise<{ kills: number; recovered: number; recoveryMs: number[]; out: string }> {
  return new Promise((res, rej) =>
    execFile(process.execPath, [XENBOX_BIN, 'chaos', '--run-dir', stack.runDir, '--json', ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) return rej(new Error(`xenbox chaos failed: ${stderr}${stdout}`));
      const last = stdout.trim().split('\n').pop()!;
      res({ ...JSON.parse(last), out: stdout });
    }),
  );
}

beforeAll(async () => {
  stack = await TestStack.up('fault');
}, 60_000);
afterEach(async () => {
  for (const n of created.splice(0)) await xl('destroy', n);
}, 60_000);
afterAll(async () => {
  await stack?.destroy();
}, 60_000);

describe('blkback killed again and again under a disktest', () => {
  it('loses no acknowledged write: the guest verifies, the host image holds the pattern, and chaos plots the run', async () => {
    const img = join(stack.runDir, 'chaos.raw');
    writeFileSync(img, Buffer.alloc(40 * MiB));
    await create('chaos-disk', { disk: `[ "${img},raw,xvda,w" ]`, cmdline: '"disktest seed=31 mb=32 then=shell"' });
    await printed('chaos-disk', /disktest: xvda, seed 31/, 60_000);
    const plot = join(stack.runDir, 'chaos.svg');
    const report = await chaos(['--target', 'blkback', '--every', '400ms', '--for', '12s', '--jitter', '0.5', '--seed', '7', '--plot', plot]);
    console.info(`chaos: ${report.kills} kills, ${report.recovered} recovered, recovery ms ${report.recoveryMs.join(' ')}`);
    expect(report.kills).toBeGreaterThanOrEqual(6);
    expect(report.recovered).toBe(report.kills);
    const m = await printed('chaos-disk', /disktest: wrote 32 MiB at [\d.]+ MB\/s, read at [\d.]+ MB\/s, verify (OK|FAILED)/, 300_000);
    const lost = /disktest: the backend went away (\d+) time\(s\); (\d+) request\(s\) were issued again/.exec(consoleLog('chaos-disk'));
    console.info(`guest: ${m[0]}; ${lost?.[0] ?? 'the backend never went away during the test'}`);
    expect(m[1]).toBe('OK');
    expect(Number(lost?.[1] ?? 0)).toBeGreaterThanOrEqual(3);
    const data = readFileSync(img);
    expect(data.subarray(0, 32 * MiB).equals(patternSectors(31n, 0n, (32 * MiB) / 512))).toBe(true);
    expect(data.subarray(32 * MiB).every((b) => b === 0)).toBe(true);
    const svg = readFileSync(plot, 'utf8');
    expect(svg.match(/<line class="kill"/g)?.length).toBe(report.kills);
    // blkback's published counters give the guest's disk line.
    expect(svg).toContain('chaos-disk disk');
  }, 400_000);
});

describe('xenstored killed under running guests', () => {
  it('guests keep pinging, driver domains keep running, and xenstore answers again afterwards', async () => {
    await create('xs-srv', { vif: '[ "bridge=xenbr0,mac=00:16:3e:6a:00:01" ]', cmdline: '"ip=10.0.1.1 udp-echo"' });
    await printed('xs-srv', /udp-echo: listening on 10\.0\.1\.1/, 60_000);
    await create('xs-cli', { vif: '[ "bridge=xenbr0,mac=00:16:3e:6a:00:02" ]', cmdline: '"ip=10.0.1.2 ping 10.0.1.1 count=16 interval=500 wait=60 then=shell"' });
    await printed('xs-cli', /icmp_seq=2 ttl=64/, 60_000);
    const nb = await stack.service('netback');
    const bb = await stack.service('blkback');
    const xsd = await stack.service('xenstored');
    expect((await stack.run('kill', 'xenstored')).code).toBe(0);
    await stack.waitFor('xenstored', (s) => s.state === 'ready' && s.pid !== xsd.pid, 20_000);
    const sum = await printed('xs-cli', /16 packets transmitted, (\d+) received/, 120_000);
    console.info(`ping across a xenstored restart: ${sum[0]}`);
    expect(Number(sum[1])).toBeGreaterThanOrEqual(14);
    expect((await stack.service('netback')).pid).toBe(nb.pid);
    expect((await stack.service('blkback')).pid).toBe(bb.pid);
    // The guest's own xenstore ring works again (re-introduced to the new xenstored).
    const list = await xl('network-list', 'xs-cli');
    expect(list.stdout).toContain('00:16:3e:6a:00:02');
  }, 240_000);
});
