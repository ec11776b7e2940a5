/**
 * The whole stack as real processes: `xenbox up/status/kill/restart/down`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDirLayout } from '@xenbox/abi';
import { isAlive, leftoverProcesses } from '@xenbox/dom0';
import { XenstoreClient } from '@xenbox/libxen';
import { TestStack, xenbox } from './helpers/stack.js';
import { XENBOX_BIN, tempRunDir } from './helpers/paths.js';

const CORE = ['hypervisor', 'xenstored', 'xenconsoled', 'netback', 'blkback'];

describe('a stack brought up with xenbox up --detach', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.up('stack');
  });
  afterAll(async () => {
    await stack?.destroy();
  });

  it('has every service ready, each domain with its own domid and a live pid', async () => {
    const st = await stack.status();
    expect(st.map((s) => s.name)).toEqual(CORE);
    for (const s of st) {
      expect(s.state, s.name).toBe('ready');
      expect(isAlive(s.pid!), s.name).toBe(true);
      expect(s.restarts).toBe(0);
    }
    const domids = st.filter((s) => !['hypervisor', 'xenconsoled'].includes(s.name)).map((s) => s.domid);
    expect(new Set(domids).size).toBe(3);
    expect(domids).not.toContain(0);
    expect(st.find((s) => s.name === 'xenconsoled')!.domid).toBe(0);
  });

  it('prints the status table with xl-like columns', async () => {
    const r = await stack.run('status');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]!.split(/\s+/)).toEqual(['NAME', 'DOMID', 'PID', 'STATE', 'UPTIME', 'RESTARTS']);
    expect(lines[4]).toMatch(/^netback\s+\d+\s+\d+\s+ready\s+\d+:\d\d:\d\d\s+0$/);
  });

  it('brings netback back as a new domain with a new pid within 2 s of a kill, leaving blkback alone', async () => {
    const before = await stack.status();
    const nb = before.find((s) => s.name === 'netback')!;
    const bb = before.find((s) => s.name === 'blkback')!;
    const killedAt = Date.now();
    const r = await stack.run('kill', 'netback');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`killed netback (pid ${nb.pid})`);
    const after = await stack.waitFor('netback', (s) => s.state === 'ready' && s.pid !== nb.pid, 2000);
    expect(Date.now() - killedAt).toBeLessThan(2000);
    expect(after.domid).not.toBe(nb.domid);
    expect(after.restarts).toBe(1);
    expect(isAlive(nb.pid!)).toBe(false);
    const bbAfter = await stack.service('blkback');
    expect(bbAfter.pid).toBe(bb.pid);
    expect(bbAfter.domid).toBe(bb.domid);
  });

  it('restarts a service in order as a new domain on xenbox restart', async () => {
    const bb = await stack.service('blkback');
    const r = await stack.run('restart', 'blkback');
    expect(r.code, r.stderr).toBe(0);
    const after = await stack.service('blkback');
    expect(after.state).toBe('ready');
    expect(after.pid).not.toBe(bb.pid);
    expect(after.domid).not.toBe(bb.domid);
    expect(after.restarts).toBe(bb.restarts + 1);
    // The old incarnation stopped cleanly (SIGTERM, exit 0), not killed.
    expect(readFileSync(runDirLayout(stack.runDir).logFile('blkback'), 'utf8')).toContain('"reason":"SIGTERM"');
  });

  it('introduces every service domain to xenstored under /local/domain/<domid>, readable by it only', async () => {
    const xs = await XenstoreClient.connectRunDir(stack.runDir);
    try {
      expect(await xs.read('/local/domain/0/name')).toBe('Domain-0');
      for (const name of ['netback', 'blkback']) {
        const s = await stack.service(name);
        expect(await xs.read(`/local/domain/${s.domid}/name`)).toBe(name);
        expect(await xs.getPerms(`/local/domain/${s.domid}`)).toEqual([{ id: 0, perm: 'n' }, { id: s.domid, perm: 'r' }]);
        expect(await xs.isDomainIntroduced(s.domid!)).toBe(true);
      }
      // Each driver domain proved its identity to xenstored over ZeroMQ and read its own name.
      expect(readFileSync(runDirLayout(stack.runDir).logFile('netback'), 'utf8')).toContain('"xenstoreName":"netback"');
    } finally {
      xs.close();
    }
  });

  it('survives kill -9 of xenstored: it comes back as a new domain with the store intact, and nobody else restarts', async () => {
    const before = await stack.status();
    const xsd = before.find((s) => s.name === 'xenstored')!;
    const xs = await XenstoreClient.connectRunDir(stack.runDir);
    try {
      await xs.write('/tool/xenbox-test', 'kept');
      await stack.run('kill', 'xenstored');
      await stack.waitFor('xenstored', (s) => s.state === 'ready' && s.pid !== xsd.pid, 3000);
      expect(await xs.read('/tool/xenbox-test')).toBe('kept');
      const nb = before.find((s) => s.name === 'netback')!;
      expect(await xs.read(`/local/domain/${nb.domid}/name`)).toBe('netback');
      const after = await stack.status();
      for (const name of ['hypervisor', 'xenconsoled', 'netback', 'blkback']) {
        expect(after.find((s) => s.name === name)!.pid, name).toBe(before.find((s) => s.name === name)!.pid);
      }
    } finally {
      xs.close();
    }
  });

  it('removes a dead domain from xenstore and introduces its successor', async () => {
    const nb = await stack.service('netback');
    await stack.run('kill', 'netback');
    const next = await stack.waitFor('netback', (s) => s.state === 'ready' && s.pid !== nb.pid, 2000);
    const xs = await XenstoreClient.connectRunDir(stack.runDir);
    try {
      expect(await xs.read(`/local/domain/${next.domid}/name`)).toBe('netback');
      const deadline = Date.now() + 2000;
      while ((await xs.tryRead(`/local/domain/${nb.domid}/name`)) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await xs.tryRead(`/local/domain/${nb.domid}/name`)).toBeUndefined();
      expect(await xs.isDomainIntroduced(nb.domid!)).toBe(false);
    } finally {
      xs.close();
    }
  });

  it('xenbox chaos kills a driver domain repeatedly and reports each recovery; status keeps the times', async () => {
    const r = await stack.run('chaos', '--target', 'blkback', '--every', '250ms', '--for', '1500ms', '--seed', '1', '--json');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const report = JSON.parse(lines[lines.length - 1]!) as { kills: number; recovered: number; recoveryMs: number[] };
    expect(report.kills).toBeGreaterThanOrEqual(2);
    expect(report.recovered).toBe(report.kills);
    expect(r.stdout).toMatch(/kill blkback \(pid \d+, domid \d+\)/);
    expect(r.stdout).toMatch(/blkback back as domid \d+, pid \d+, after \d+ ms/);
    const bb = await stack.service('blkback');
    expect(bb.state).toBe('ready');
    expect(bb.recoveryMs.slice(-report.kills)).toEqual(report.recoveryMs);
    // Kills on request are experiments, not a crash loop: nothing was given up on.
    expect(bb.lastExit).not.toContain('gave up');
  });

  it('refuses a second up on a live run dir and leaves the stack alone', async () => {
    const before = await stack.status();
    const r = await stack.run('up', '--detach');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/EBUSY: a stack is already running in .* \(supervisor pid \d+\)/);
    expect((await stack.status()).map((s) => s.pid)).toEqual(before.map((s) => s.pid));
  });

  it('names the service when asked to kill one that does not exist', async () => {
    const r = await stack.run('kill', 'nosuch');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ENOENT: no service named 'nosuch'");
  });

  it('writes one pino JSON log per process and pretty-prints them', async () => {
    const logs = runDirLayout(stack.runDir).logs;
    for (const n of [...CORE, 'xenbox']) {
      const first = readFileSync(join(logs, `${n}.log`), 'utf8').split('\n')[0]!;
      expect(JSON.parse(first)).toMatchObject({ name: n, level: 30 });
    }
    const r = await stack.run('logs', 'netback');
    expect(r.stdout).toMatch(/\d\d:\d\d:\d\d\.\d{3} INFO  netback\[d\d+\] ready/);
  });
});

describe('xenbox logs -f', () => {
  it('keeps printing, so a restart shows up as it happens', async () => {
    const stack = await TestStack.up('logsf');
    const follower = spawn(process.execPath, [XENBOX_BIN, 'logs', 'netback', '-f', '--run-dir', stack.runDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      follower.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const readyLines = () => out.split('\n').filter((l) => / INFO  netback\[d\d+\] ready$/.test(l)).length;
      const until = async (pred: () => boolean) => {
        const deadline = Date.now() + 4000;
        while (!pred() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        return pred();
      };
      expect(await until(() => readyLines() === 1)).toBe(true);
      await stack.run('kill', 'netback');
      expect(await until(() => readyLines() === 2)).toBe(true);
    } finally {
      follower.kill();
      await stack.destroy();
    }
  });
});

describe('xenbox down', () => {
  it('stops everything and leaves no process and no socket', async () => {
    const stack = await TestStack.up('down');
    try {
      const pids = (await stack.status()).map((s) => s.pid!);
      const r = await stack.run('down');
      expect(r.code, r.stderr).toBe(0);
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
      expect(leftoverProcesses(stack.runDir)).toEqual([]);
      const l = runDirLayout(stack.runDir);
      for (const f of [l.hypervisorSocket, l.supervisorSocket, l.xenstoredSocket, l.xenstoredZmqSocket, l.supervisorPid, l.dom0Token]) expect(existsSync(f), f).toBe(false);
      // Logs are kept for post-mortems.
      expect(existsSync(l.logFile('hypervisor'))).toBe(true);
    } finally {
      await stack.destroy();
    }
  });
});

describe('a hypervisor that dies', () => {
  it('takes the stack down at once, as a Xen panic takes the host, leaving no process', async () => {
    const stack = await TestStack.up('panic');
    try {
      const st = await stack.status();
      const supPid = Number(readFileSync(runDirLayout(stack.runDir).supervisorPid, 'utf8'));
      process.kill(st.find((s) => s.name === 'hypervisor')!.pid!, 'SIGKILL');
      const deadline = Date.now() + 5000;
      while (isAlive(supPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(isAlive(supPid)).toBe(false);
      for (const s of st) expect(isAlive(s.pid!), s.name).toBe(false);
      expect(leftoverProcesses(stack.runDir)).toEqual([]);
      expect(readFileSync(runDirLayout(stack.runDir).logFile('xenbox'), 'utf8')).toContain('without a hypervisor nothing can run');
    } finally {
      await stack.destroy();
    }
  });
});

describe('a run dir left by a killed supervisor', () => {
  it('is detected and recovered by the next up', async () => {
    const stack = await TestStack.up('stale');
    try {
      const old = await stack.status();
      const supPid = Number(readFileSync(runDirLayout(stack.runDir).supervisorPid, 'utf8'));
      process.kill(supPid, 'SIGKILL');
      const r = await stack.run('up', '--detach', '--config', join(stack.runDir, 'no-guests.json'));
      expect(r.code, r.stderr).toBe(0);
      const now = await stack.status();
      expect(now.every((s) => s.state === 'ready')).toBe(true);
      for (const s of old) expect(isAlive(s.pid!), `${s.name} of the dead supervisor`).toBe(false);
      const log = readFileSync(runDirLayout(stack.runDir).logFile('xenbox'), 'utf8');
      expect(log).toContain('recovered a run dir left by a supervisor that died');
    } finally {
      await stack.destroy();
    }
  });
});

describe('a service in a crash loop', () => {
  it('is given up on after the configured number of restarts, and status and logs say so', async () => {
    const dir = tempRunDir('loop');
    const cfg = join(dir, 'stack.json');
    writeFileSync(cfg, JSON.stringify({
      services: [{ name: 'netback', kind: 'netback', args: { bridges: ['not a bridge!'] } }, { kind: 'blkback' }],
      restart: { maxRestarts: 2, windowSeconds: 60 },
    }));
    const stack = new TestStack(dir);
    try {
      const r = await stack.run('up', '--detach', '--config', cfg);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('failed to start: netback');
      const nb = await stack.service('netback');
      expect(nb.state).toBe('failed');
      expect(nb.restarts).toBe(2);
      expect(nb.lastExit).toContain('gave up after 2 restarts in 60s');
      expect((await stack.service('blkback')).state).toBe('ready');
      expect(readFileSync(runDirLayout(dir).logFile('netback'), 'utf8')).toContain('bridges must be a list of interface names');
      expect(readFileSync(runDirLayout(dir).logFile('xenbox'), 'utf8')).toContain('crash loop: giving up');
    } finally {
      await stack.destroy();
    }
  });
});

describe('a bad stack config', () => {
  it('is refused before anything starts, naming the field', async () => {
    const dir = tempRunDir('badcfg');
    const cfg = join(dir, 'stack.json');
    writeFileSync(cfg, JSON.stringify({ services: [{ kind: 'tapback' }] }));
    const r = await xenbox(['up', '--detach', '--run-dir', dir, '--config', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('services[0].kind: must be one of netback, blkback');
    expect(existsSync(runDirLayout(dir).supervisorPid)).toBe(false);
    await new TestStack(dir).destroy();
  });
});
