/**
 * Guests reach xenstored and xenconsoled over rings, as in Xen: a C guest
 * (packages/guests/pv/xs-test.c) finds its rings with HVMOP_get_param,
 * talks xenstore over the ring page xenstored mapped through grant ref 1,
 * writes and reads its console ring, which xenconsoled serves; dom0's own
 * tools (Xen's xenstore-read / xenstore-ls) see what it wrote; a hostile
 * ring is cut off without hurting another guest; @releaseDomain fires when
 * a guest shuts down.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_ATTACH_VERB, XENSTORE_RING, runDirLayout } from '@xenbox/abi';
import { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import { TestStack } from './helpers/stack.js';
import { REPO } from './helpers/paths.js';

const IMAGE = resolve(REPO, 'packages/guests/images/pv-xs-test.elf');
const XS_UTILS = '/usr/bin/xenstore-read';

let stack: TestStack;
let dom0: HypervisorConnection;
let xs: XenstoreClient;
const domids: Record<string, number> = {};

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** What a guest printed so far, on either console (xenconsoled's log). */
function consoleText(name: string): string {
  const file = runDirLayout(stack.runDir).consoleLog(name);
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** The tail of a service's log, for failure messages. */
function logTail(service: string): string {
  const file = runDirLayout(stack.runDir).logFile(service);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-15).join('\n') : '';
}

async function printed(name: string, text: string, ms?: number): Promise<void> {
  try {
    await until(`${name} to print ${JSON.stringify(text)}`, () => consoleText(name).includes(text), ms);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nconsole so far:\n${consoleText(name).slice(-600)}\nxenconsoled:\n${logTail('xenconsoled')}\nxenstored:\n${logTail('xenstored')}`);
  }
}

/** Xen's own client tools against the stack's xenstored. */
function xenstoreTool(tool: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(`/usr/bin/xenstore-${tool}`, args, { env: { ...process.env, XENSTORED_PATH: runDirLayout(stack.runDir).xenstoredSocket }, timeout: 10_000 }, (err, stdout, stderr) =>
      res({ code: err ? 1 : 0, stdout, stderr }),
    );
  });
}

/** Type at a guest's console as `xl console` does (xenconsoled's attach socket). */
function type(domid: number, text: string): Promise<void> {
  return new Promise((res, rej) => {
    const sock = connect(runDirLayout(stack.runDir).consoleSocket);
    sock.on('error', rej);
    sock.once('connect', () => {
      sock.write(`${CONSOLE_ATTACH_VERB} ${domid}\n`);
      // Wait for OK, then type and leave.
      sock.once('data', () => {
        sock.write(text, () => setTimeout(() => (sock.end(), res()), 50));
      });
    });
  });
}

async function createGuest(name: string, extra = ''): Promise<number> {
  const cfg = join(stack.runDir, `${name}.cfg`);
  writeFileSync(cfg, `name = "${name}"\ntype = "pvh"\nmemory = 16\nkernel = "${IMAGE}"\n${extra}`);
  const r = await stack.xl('create', cfg);
  expect(r.code, r.stderr).toBe(0);
  const domid = Number(new RegExp(`Domain (\\d+) \\(${name}\\) created`).exec(r.stderr)?.[1]);
  domids[name] = domid;
  return domid;
}

beforeAll(async () => {
  stack = await TestStack.up('rings');
  const token = readFileSync(runDirLayout(stack.runDir).dom0Token, 'utf8').trim();
  dom0 = await HypervisorConnection.connect({ runDir: stack.runDir, domid: 0, token });
  xs = await XenstoreClient.connectRunDir(stack.runDir);
  await createGuest('xsa', 'on_poweroff = "preserve"\n');
  await createGuest('xsb');
}, 60_000);

afterAll(async () => {
  for (const name of Object.keys(domids)) await stack?.xl('destroy', name);
  xs?.close();
  await dom0?.close();
  await stack?.destroy();
});

describe('a PV guest finds its rings', () => {
  it('reads the params with HVMOP_get_param, is refused HVMOP_set_param with -EPERM, and finds grant refs 0 and 1 still seeded after placing its grant frame', async () => {
    // SBI output comes a byte at a time: wait for whole lines.
    await printed('xsa', 'xs-test: server features 15\n');
    const text = consoleText('xsa');
    // The magic pages: the last two of 16 MiB of RAM from 0x80000000 (console, then xenstore).
    expect(text).toMatch(/store pfn 0x0+80fff port \d+, console pfn 0x0+80ffe port \d+/);
    expect(text).toContain('xs-test: set_param rc=-1');
    expect(text).toMatch(/grant 0 -> d0, grant 1 -> d\d+: seeded entries kept/);
    // RECONNECTION | ERROR | WATCHDEPTH | DOMID_ANY
    expect(text).toContain('xs-test: server features 15');
  });

  it('publishes the rings in xenstore as libxl does (console/, store/, /vm/<uuid>)', async () => {
    const base = `/local/domain/${domids.xsa}`;
    expect(await xs.read(`${base}/console/type`)).toBe('xenconsoled');
    expect(Number(await xs.read(`${base}/console/ring-ref`))).toBe(0x80ffe);
    expect(Number(await xs.read(`${base}/store/ring-ref`))).toBe(0x80fff);
    expect(Number(await xs.read(`${base}/store/port`))).toBeGreaterThan(0);
    const vm = await xs.read(`${base}/vm`);
    expect(await xs.read(`${vm}/name`)).toBe('xsa');
    expect(await xs.isDomainIntroduced(domids.xsa!)).toBe(true);
  });
});

describe('xenstore over the ring', () => {
  it('serves the guest\'s WRITE and READ, and READ of its own name by a relative path', async () => {
    await printed('xsa', 'xs-test: xenstore done');
    const text = consoleText('xsa');
    expect(text).toContain('xs-test: write data/hello = OK');
    expect(text).toContain('xs-test: read data/hello = world');
    expect(text).toContain('xs-test: read name = xsa');
    // The guest timed 100 back-to-back READs over its ring; dom0's socket does the same for comparison.
    const ringUs = Number(/100 ring reads in us (\d+)/.exec(text)?.[1]);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) await xs.read(`/local/domain/${domids.xsa}/data/hello`);
    const sockUs = Number(process.hrtime.bigint() - t0) / 1000;
    console.log(`xenstore READ round trip: guest ring ${(ringUs / 100).toFixed(0)} us, dom0 Unix socket ${(sockUs / 100).toFixed(0)} us (ratio ${(ringUs / sockUs).toFixed(2)})`);
    expect(ringUs).toBeGreaterThan(0);
  });

  it('refuses a domU /local/domain/0 with EACCES', () => {
    expect(consoleText('xsa')).toContain('xs-test: read /local/domain/0/name error EACCES');
  });

  it('fires the guest\'s watches: once when set, then for a write below', () => {
    const text = consoleText('xsa');
    expect(text).toContain('xs-test: watch data = OK');
    expect(text).toContain('xs-test: watch event data\n');
    expect(text).toContain('xs-test: watch event data/w\n');
  });

  it.skipIf(!existsSync(XS_UTILS))('shows what the guest wrote to Xen\'s own xenstore-read and xenstore-ls', async () => {
    const base = `/local/domain/${domids.xsa}`;
    const r = await xenstoreTool('read', `${base}/data/hello`);
    expect(r).toMatchObject({ code: 0, stdout: 'world\n' });
    const ls = await xenstoreTool('ls', `${base}/data`);
    expect(ls.stdout).toContain('hello = "world"');
    expect(ls.stdout).toContain('w = "1"');
  });
});

describe('the console ring', () => {
  it('carries the guest\'s output to its log and to xl console', async () => {
    await printed('xsa', 'ring: hello from the console ring');
    // With stdin closed, xl console ends as soon as its input does: it may leave before the backlog arrives, so look again.
    let r = await stack.xl('console', 'xsa');
    for (let i = 0; i < 5 && !r.stdout.includes('xs-test: start'); i++) r = await stack.xl('console', 'xsa');
    expect(r.stdout).toContain('ring: hello from the console ring');
    // Both consoles in one stream: SBI lines and ring lines.
    expect(r.stdout).toContain('xs-test: start');
  });

  it('takes typed input into the guest\'s in[] ring', async () => {
    await printed('xsa', 'ring: type a line');
    await type(domids.xsa!, 'hello there\n');
    await printed('xsa', 'xs-test: got line: hello there');
    expect(consoleText('xsa')).toContain('ring: got line: hello there');
  });
});

describe('a hostile ring', () => {
  it('gets error = XENSTORE_ERROR_RINGIDX for indexes a ring apart, and the other guest goes on', async () => {
    const b = domids.xsb!;
    await printed('xsb', 'ring: type a line');
    await type(b, 'x\n');
    await printed('xsb', 'xs-test: got line: x');
    // Between requests: req_cons == req_prod.  Claim 5000 bytes of requests.
    const gfn = Number(await xs.read(`/local/domain/${b}/store/ring-ref`));
    const idx = await dom0.call('foreign.read', { domid: b, gfn, offset: XENSTORE_RING.REQ_CONS, len: 4 });
    const cons = Buffer.from(idx).readUInt32LE(0);
    const bad = Buffer.alloc(4);
    bad.writeUInt32LE((cons + 5000) >>> 0);
    await dom0.call('foreign.write', { domid: b, gfn, offset: XENSTORE_RING.REQ_PROD, data: bad });
    await type(b, 'y\n');
    await printed('xsb', 'xs-test: again read data/hello ring error=2');
    const err = Buffer.from(await dom0.call('foreign.read', { domid: b, gfn, offset: XENSTORE_RING.ERROR, len: 4 })).readUInt32LE(0);
    expect(err).toBe(2);
    // The other guest's ring is untouched.
    await type(domids.xsa!, 'again\n');
    await printed('xsa', 'xs-test: again read data/hello = world');
  });
});

describe('restarts', () => {
  it('re-offers the guest\'s store port to the new xenstored domain and re-introduces it: the guest\'s next request is served', async () => {
    const before = await stack.service('xenstored');
    const r = await stack.run('kill', 'xenstored');
    expect(r.code, r.stderr).toBe(0);
    const after = await stack.waitFor('xenstored', (s) => s.state === 'ready' && s.domid !== before.domid, 15_000);
    expect(after.domid).not.toBe(before.domid);
    const count = () => consoleText('xsa').split('xs-test: again read data/hello = world').length - 1;
    const n = count();
    // The supervisor re-introduces the guests once the new xenstored is ready.
    const supervisorLog = runDirLayout(stack.runDir).logFile('xenbox');
    await until('the supervisor to re-introduce the guests', () => readFileSync(supervisorLog, 'utf8').includes('rings reconnected to the new xenstored'));
    await type(domids.xsa!, 'after restart\n');
    await until('the guest\'s request after the restart', () => count() > n);
  });

  it('a restarted xenconsoled takes the console ring over again (the old process\'s dom0 port is closed and the port rebound)', async () => {
    const r = await stack.run('kill', 'xenconsoled');
    expect(r.code, r.stderr).toBe(0);
    await stack.waitFor('xenconsoled', (s) => s.state === 'ready' && s.restarts > 0, 15_000);
    const count = () => consoleText('xsa').split('xs-test: again read data/hello = world').length - 1;
    const n = count();
    // Typed input reaches the guest only through its ring.
    await until('the new xenconsoled to serve the ring', async () => {
      await type(domids.xsa!, 'after console restart\n');
      return until('the guest to read the line', () => count() > n, 1000).then(() => true, () => false);
    });
  });
});

describe('shutdown', () => {
  it('fires @releaseDomain when a guest shuts down (VIRQ_DOM_EXC to xenstored), not only on destroy', async () => {
    const w = await xs.watch('@releaseDomain');
    await w.next(); // the watch's first firing
    await type(domids.xsa!, 'quit\n');
    await printed('xsa', 'xs-test: bye');
    const ev = await w.next(10_000);
    expect(ev.path).toBe('@releaseDomain');
    // on_poweroff = "preserve": the domain is still there, shut down, not destroyed.
    const info = await dom0.call('domctl.getdomaininfo', { domid: domids.xsa! });
    expect(info.shutdown).toBe('poweroff');
    await w.unwatch();
  });
});

describe('destroy', () => {
  it('releases the guest: xenstored unmaps its ring and forgets it, and /vm/<uuid> and /local/domain/<d> go', async () => {
    const b = domids.xsb!;
    const vm = await xs.read(`/local/domain/${b}/vm`);
    const r = await stack.xl('destroy', 'xsb');
    expect(r.code, r.stderr).toBe(0);
    delete domids.xsb;
    const closed = () =>
      readFileSync(runDirLayout(stack.runDir).logFile('xenstored'), 'utf8')
        .split('\n')
        .some((l) => l.includes(`"dom":${b},`) && l.includes('ring connection closed'));
    await until('xenstored to close the ring', closed);
    expect(await xs.isDomainIntroduced(b)).toBe(false);
    await expect(xs.read(`${vm}/name`)).rejects.toMatchObject({ errno: 'ENOENT' });
    await expect(xs.read(`/local/domain/${b}/name`)).rejects.toMatchObject({ errno: 'ENOENT' });
  });
});
