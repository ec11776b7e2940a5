/**
 * xenstored survives kill -9: the supervisor starts a new one on the same
 * run dir, the store comes back from snapshot + journal, clients reconnect
 * and their watches fire again; no acknowledged write is lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDirLayout } from '@xenbox/abi';
import { XenstoreClient } from '@xenbox/libxen';
import { expectErrno } from './helpers.js';

const STANDALONE = join(dirname(fileURLToPath(import.meta.url)), '../dist/standalone.js');

function startDaemon(runDir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [STANDALONE, '--run-dir', runDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout!.on('data', (d: Buffer) => {
      if (d.toString().startsWith('ready')) resolve(p);
    });
    p.once('exit', (code) => reject(new Error(`xenstored exited with ${code}`)));
  });
}

function kill9(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

describe('restart after kill -9', () => {
  let runDir: string;
  let daemon: ChildProcess;
  const clients: XenstoreClient[] = [];
  beforeEach(async () => {
    runDir = mkdtempSync(join(tmpdir(), 'xsr-'));
    daemon = await startDaemon(runDir);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await kill9(daemon);
    rmSync(runDir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write, permissions and introduced domains, and watches fire again', async () => {
    const dom0 = await XenstoreClient.connectRunDir(runDir, { timeoutMs: 10_000 });
    clients.push(dom0);
    const secret = randomBytes(16).toString('hex');
    await dom0.mkdir('/local/domain/4');
    await dom0.setPerms('/local/domain/4', [{ perm: 'n', id: 4 }]);
    await dom0.introduce(4, { secret });
    const d4 = await XenstoreClient.connectZmq({ runDir }, { domid: 4, secret }, { timeoutMs: 10_000 });
    clients.push(d4);
    // Many writes in flight; each one acknowledged must survive.
    await Promise.all(Array.from({ length: 200 }, (_, i) => dom0.write(`/data/n${i}`, `v${i}`)));
    await d4.write('state', 'connected');
    const w0 = await dom0.watch('/data', 'w0');
    const w4 = await d4.watch('state', 'w4');
    expect((await w0.next()).path).toBe('/data');
    expect((await w4.next()).path).toBe('state');
    const t = await dom0.transactionStart();
    await dom0.write('/data/in-tx', 'lost', t);

    await kill9(daemon);
    daemon = await startDaemon(runDir);

    // Reconnected: the watches are registered again and fire once, as new watches do.
    expect((await w0.next(10_000)).path).toBe('/data');
    expect((await w4.next(10_000)).path).toBe('state');
    expect(await dom0.read('/data/n0')).toBe('v0');
    expect(await dom0.read('/data/n199')).toBe('v199');
    expect(await dom0.directory('/data')).toHaveLength(200);
    expect(await d4.read('state')).toBe('connected');
    expect(await dom0.getPerms('/local/domain/4')).toEqual([{ perm: 'n', id: 4 }]);
    expect(await dom0.isDomainIntroduced(4)).toBe(true);
    // A transaction open during the crash is gone: EAGAIN, and its write never happened.
    await expectErrno(dom0.transactionEnd(t, true), 'EAGAIN');
    expect(await dom0.tryRead('/data/in-tx')).toBeUndefined();
    // And the watches keep working.
    await dom0.write('/data/after', 'restart');
    expect((await w0.next()).path).toBe('/data/after');
    await dom0.write('/local/domain/4/state', 'again');
    expect((await w4.next()).path).toBe('state');
  });

  it('a domain that was released stays released', async () => {
    const dom0 = await XenstoreClient.connectUnix(runDirLayout(runDir).xenstoredSocket, { timeoutMs: 10_000 });
    clients.push(dom0);
    await dom0.introduce(6, { evtchn: 1 });
    await dom0.release(6);
    await kill9(daemon);
    daemon = await startDaemon(runDir);
    await dom0.write('/ping', 'x');
    expect(await dom0.isDomainIntroduced(6)).toBe(false);
  });
});
