/**
 * Disaggregation in practice (issue #10): driver domains and xenstored die
 * under guests that are using them, and the guests carry on.
 *  - a PV kernel runs disktest while `xenbox chaos` kills blkback ten times at
 *    random moments: every acknowledged write is on disk (the guest
 *    verifies, and the image file on the host holds exactly the pattern),
 *    the supervisor keeps a record of each restart, and the chaos run draws
 *    its plot;
 *  - xenstored is killed while two guests ping each other: the pings go on,
 *    the driver domains keep their pids, and xenstore works afterwards;
 *  - isolation: a disktest runs to the end and verifies with netback held
 *    down, and a guest whose blkback is held down answers pings.
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

/** The supervisor's own log (xenbox.log): its kills, deaths and restarts. */
function supervisorLog(): string {
  const f = runDirLayout(stack.runDir).logFile('xenbox');
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
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
    // Ten kills at random moments (400 ms ± 50 % apart, after each recovery), as issue #10 asks.
    const report = await chaos(['--target', 'blkback', '--every', '400ms', '--for', '90s', '--kills', '10', '--jitter', '0.5', '--seed', '7', '--plot', plot]);
    console.info(`chaos: ${report.kills} kills, ${report.recovered} recovered, recovery ms ${report.recoveryMs.join(' ')}`);
    expect(report.kills).toBe(10);
    expect(report.recovered, `${report.out}\nblkback now: ${JSON.stringify(await stack.service('blkback'))}\n${supervisorLog().split('\n').filter((l) => /blkback/.test(l)).slice(-30).join('\n')}`).toBe(report.kills);
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
    // The supervisor's per-restart record: ready, the vbd Connected again, the first answered request, what blkfront re-issued.
    const recs = (await stack.service('blkback')).restartMetrics.slice(-report.kills);
    console.info(`restart records: ${recs.map((r) => `ready ${r.readyMs} / connected ${r.connectedMs} / first I/O ${r.firstIoMs} ms, ${r.reissued} re-issued`).join('; ')}`);
    expect(recs).toHaveLength(report.kills);
    for (const r of recs) {
      expect([0, 1]).toContain(r.devices);
      expect(r.readyMs).toBeGreaterThan(0);
    }
    // A kill can land before the vbd is Connected again (kills come 200-600 ms
    // after the new process is ready, Connected follows ready by ~150-300 ms on
    // a loaded machine): such a record counts no device.  Most kills hit a
    // connected one.
    expect(recs.filter((r) => r.devices === 1).length).toBeGreaterThanOrEqual(report.kills / 2);
    // The guest wrote without pause; a new incarnation killed before it answered anything has no first I/O.
    const answered = recs.filter((r) => r.firstIoMs !== null);
    expect(answered.length).toBeGreaterThanOrEqual(1);
    for (const r of answered) expect(r.firstIoMs!).toBeGreaterThanOrEqual(r.connectedMs!);
    expect(answered.reduce((n, r) => n + r.reissued!, 0)).toBeGreaterThan(0);
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

describe('isolation between driver domains', () => {
  it('while netback is held down, a guest that only uses its disk runs a whole disktest and verifies it', async () => {
    const img = join(stack.runDir, 'iso.raw');
    writeFileSync(img, Buffer.alloc(12 * MiB));
    const k = await stack.run('kill', 'netback', '--hold', '60s');
    expect(k.code, k.stderr).toBe(0);
    expect(k.stdout).toMatch(/restarting in 60000 ms/);
    await stack.waitFor('netback', (s) => s.state === 'restarting', 10_000);
    await create('iso-disk', { disk: `[ "${img},raw,xvda,w" ]`, cmdline: '"disktest seed=12 mb=8 then=shell"' });
    const m = await printed('iso-disk', /disktest: wrote 8 MiB at ([\d.]+) MB\/s, read at ([\d.]+) MB\/s, verify (OK|FAILED)/, 120_000);
    // Still down: the whole test ran while netback was.
    const nb = await stack.service('netback');
    console.info(`with netback down: ${m[0]}`);
    expect(nb.state).toBe('restarting');
    expect(m[3]).toBe('OK');
    expect(readFileSync(img).subarray(0, 8 * MiB).equals(patternSectors(12n, 0n, (8 * MiB) / 512))).toBe(true);
    // And it comes back when asked to, ahead of the hold.
    const r = await stack.run('restart', 'netback');
    expect(r.code, r.stderr).toBe(0);
    await stack.waitFor('netback', (s) => s.state === 'ready', 20_000);
  }, 240_000);

  it('while blkback is held down, a guest whose blkfront is waiting for it answers pings all the same', async () => {
    const img = join(stack.runDir, 'iso-a.raw');
    writeFileSync(img, Buffer.alloc(2 * MiB));
    await create('iso-a', { disk: `[ "${img},raw,xvda,w" ]`, vif: '[ "bridge=xenbr0,mac=00:16:3e:6b:00:01" ]', cmdline: '"ip=10.0.3.1 shell"' });
    await printed('iso-a', /pvkernel> /, 60_000);
    const k = await stack.run('kill', 'blkback', '--hold', '60s');
    expect(k.code, k.stderr).toBe(0);
    // Its blkfront has noticed and is waiting for a new backend ...
    await printed('iso-a', /blkfront xvda: backend \S+ went away/, 20_000);
    // (and the toolstack is done with the dead domain: destroyed, its devices saved for the next one)
    await stack.waitFor('blkback', (s) => s.state === 'restarting', 20_000);
    // ... while another guest pings it.
    await create('iso-b', { vif: '[ "bridge=xenbr0,mac=00:16:3e:6b:00:02" ]', cmdline: '"ip=10.0.3.2 ping 10.0.3.1 count=30 interval=100 wait=60 then=shell"' });
    const sum = await printed('iso-b', /30 packets transmitted, (\d+) received/, 90_000);
    const log = consoleLog('iso-b');
    console.info(`pinging a guest whose blkback is down: ${sum[0]}; ${/rtt [^\n]*/.exec(log)?.[0] ?? ''}`);
    // All of it happened during the outage.
    expect((await stack.service('blkback')).state).toBe('restarting');
    expect(consoleLog('iso-a')).not.toMatch(/blkfront xvda: reconnected/);
    // A blkfront that waited for its backend in a loop (as this one did before xenfront.c) answers none of
    // them; on a loaded two-core host the odd echo can miss ping's one-second window with or without an outage.
    expect(Number(sum[1]), `iso-b:\n${log}\niso-a:\n${consoleLog('iso-a')}`).toBeGreaterThanOrEqual(28);
    // And the disk comes back when blkback does.
    expect((await stack.run('restart', 'blkback')).code).toBe(0);
    await printed('iso-a', /blkfront xvda: reconnected/, 30_000);
  }, 240_000);
});
