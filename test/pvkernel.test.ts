/**
 * xenbox's RISC-V PV kernel (packages/guests/pvkernel, docs/pvkernel.md)
 * under the whole stack: `xl create` boots it, it parses its device tree,
 * sets up memory, event channels, the timer and the grant table, finds
 * xenstore and the console ring when the toolstack gives them (and says so
 * plainly when it does not), runs the workload its command line names, and
 * its shell answers what is typed through `xl console`.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HVM_PARAM, runDirLayout } from '@xenbox/abi';
import { ForeignMemory, GrantMapper, HypervisorConnection } from '@xenbox/libxen';
import { TestStack } from './helpers/stack.js';
import { REPO, XL_BIN } from './helpers/paths.js';

const IMAGE = resolve(REPO, 'packages/guests/images/pvkernel.elf');
const XS_UTILS = '/usr/bin/xenstore-ls';
let stack: TestStack;
let dom0: HypervisorConnection;
const consoles: ChildProcessWithoutNullStreams[] = [];

const xl = (...args: string[]) => stack.xl(...args);

function config(name: string, lines: Record<string, string | number> = {}): string {
  const file = join(stack.runDir, `${name}.cfg`);
  const body = Object.entries({ name: `"${name}"`, type: '"pvh"', memory: 32, kernel: `"${IMAGE}"`, on_poweroff: '"destroy"', on_crash: '"preserve"', ...lines })
    .map(([k, v]) => `${k} = ${v}`).join('\n');
  writeFileSync(file, body + '\n');
  return file;
}

/** What the guest printed so far (xenconsoled's log of it). */
function consoleLog(name: string): string {
  const f = runDirLayout(stack.runDir).consoleLog(name);
  return existsSync(f) ? readFileSync(f, 'latin1') : '';
}

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000, onTimeout = () => ''): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${onTimeout()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `xl console NAME` with a pipe for the keyboard; collects what it prints. */
function attach(name: string): { out: () => string; type: (s: string) => void; close: () => void } {
  const child = spawn(process.execPath, [XL_BIN, 'console', name], { env: { ...process.env, XENBOX_RUN_DIR: stack.runDir }, stdio: 'pipe' });
  consoles.push(child);
  let text = '';
  child.stdout.on('data', (b: Buffer) => (text += b.toString('latin1')));
  return { out: () => text, type: (s) => child.stdin.write(s), close: () => child.kill() };
}

/** The xl list row of a domain, or undefined. */
async function listed(name: string): Promise<{ domid: number; state: string } | undefined> {
  const line = (await xl('list')).stdout.split('\n').find((l) => l.startsWith(name + ' '));
  if (!line) return undefined;
  const cols = line.split(/\s+/);
  return { domid: Number(cols[1]), state: cols[4]! };
}

/** Xen's own xenstore tools against this stack's xenstored. */
function xenstoreTool(tool: 'ls' | 'read' | 'write', ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(`/usr/bin/xenstore-${tool}`, args, { env: { ...process.env, XENSTORED_PATH: runDirLayout(stack.runDir).xenstoredSocket }, timeout: 10_000 }, (err, stdout, stderr) =>
      res({ code: err ? 1 : 0, stdout, stderr }));
  });
}

type Console = ReturnType<typeof attach>;

/** Type a line and wait until the answer matches `want`; the answer. */
async function typedIn(con: Console, line: string, want: RegExp): Promise<string> {
  const from = con.out().length;
  con.type(line + '\r');
  await until(`the answer to '${line}'`, () => want.test(con.out().slice(from)), 10_000, () => `; xl console shows:\n${con.out().slice(from)}`);
  return con.out().slice(from);
}

beforeAll(async () => {
  stack = await TestStack.up('pvkernel');
  dom0 = await HypervisorConnection.connect({ runDir: stack.runDir, domid: 0, token: readFileSync(runDirLayout(stack.runDir).dom0Token, 'utf8').trim() });
}, 60_000);
afterAll(async () => {
  for (const c of consoles) c.kill();
  await dom0?.close();
  for (const name of ['pvk-cpu', 'pvk-shell', 'pvk-reboot', 'pvk-hostile']) if (stack && (await listed(name))) await xl('destroy', name);
  await stack?.destroy();
}, 60_000);

describe('the pvkernel', () => {
  let shell: Console;

  it('boots from xl create, prints its banner with the RAM /memory gives and the command line, and runs the cpu workload', async () => {
    const r = await xl('create', config('pvk-cpu', { cmdline: '"cpu seconds=1 then=poweroff"' }));
    expect(r.code, r.stderr).toBe(0);
    const log = () => consoleLog('pvk-cpu');
    await until('the cpu workload to finish', () => log().includes('cpu: done'), 20_000, () => `; console:\n${log()}`);
    const text = log();
    expect(text).toMatch(/xenbox pvkernel: domid \d+ \(.*\), (31|32) MiB, cmdline 'cpu seconds=1 then=poweroff'/);
    expect(text).toMatch(/cpu: batch 1: \d+ iterations\/s, checksum [0-9a-f]{16}/);
    // The checksum depends only on the work: the same on every run.
    expect(text).toContain('cpu: batch 1: ');
    expect(/checksum ([0-9a-f]{16})/.exec(text)![1]).toBe(CPU_BATCH1_CHECKSUM);
    expect(text).not.toMatch(/panic|Oops/);
    // then=poweroff: SCHEDOP_shutdown(poweroff), and on_poweroff = destroy takes it away.
    await until('the domain to be gone', async () => !(await listed('pvk-cpu')));
    expect(log()).toContain('reboot: Power down');
  }, 40_000);

  it('finds its xenstore through the HVM params and prints its domid and name from it', () => {
    const text = consoleLog('pvk-cpu');
    expect(text).not.toContain('no xenstore');
    expect(text).toMatch(/xenbox pvkernel: domid [1-9]\d* \(pvk-cpu\)/);
  });

  it('runs its shell on the console: echo, help, free, uptime, and an unknown command', async () => {
    const r = await xl('create', config('pvk-shell', { cmdline: '"shell"' }));
    expect(r.code, r.stderr).toBe(0);
    shell = attach('pvk-shell');
    const con = shell;
    await until('the prompt', () => consoleLog('pvk-shell').includes('pvkernel> '), 15_000, () => `; console:\n${consoleLog('pvk-shell')}`);
    const typed = (line: string, want: RegExp) => typedIn(con, line, want);
    expect(await typed('echo hello from xl console', /hello from xl console\r\npvkernel> /)).toContain('echo hello from xl console');
    expect(await typed('help', /xenstore-read PATH[^]*pvkernel> /)).toContain('poweroff | reboot | crash');
    expect(await typed('free', /Mem: +\d+ +\d+ +\d+[^]*pvkernel> /)).toMatch(/grant refs in use: \d+/);
    expect(await typed('uptime', /up \d+\.\d{3} s, \d+ events, \d+ wake-ups from WFI\r\npvkernel> /)).toBeTruthy();
    // Idle, it sleeps in WFI until its set_timer_op deadline: a handful of wake-ups a second, not a busy loop.
    const wakeups = (t: string) => Number(/(\d+) wake-ups from WFI/.exec(t)![1]);
    const w0 = wakeups(await typed('uptime', /wake-ups from WFI\r\npvkernel> /));
    const t0 = Date.now();
    await typed('sleep 1500', /pvkernel> $/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    const w1 = wakeups(await typed('uptime', /wake-ups from WFI\r\npvkernel> /));
    expect(w1 - w0).toBeLessThan(30);
    expect(await typed('interrupts', /port +events +handler[^]*pvkernel> $/)).toMatch(/\r\n +\d+ +\d+ +0x[0-9a-f]+/);
    expect(await typed('frobnicate', /frobnicate: unknown command \(try help\)\r\npvkernel> /)).toBeTruthy();
    // Line editing: backspace erases, Ctrl-U kills the line.
    expect(await typed('echo abX\x7fc', /\r\nabc\r\npvkernel> /)).toBeTruthy();
    expect(await typed('junk\x15echo clean', /\r\nclean\r\npvkernel> /)).toBeTruthy();
  }, 60_000);

  it('finds xenstore through the HVM params: reads its name, writes data/, and Xen\'s own xenstore-ls sees it', async () => {
    const text = consoleLog('pvk-shell');
    // The toolstack always gives PV guests their rings now: "no xenstore" is a failure, not a reason to skip.
    expect(text).not.toContain('no xenstore');
    const domid = (await listed('pvk-shell'))!.domid;
    expect(text).toContain(`xenbox pvkernel: domid ${domid} (pvk-shell), 31 MiB, cmdline 'shell'`);
    expect(text).toContain('console: switched to the Xen console ring');
    if (!existsSync(XS_UTILS)) return;
    const ls = await xenstoreTool('ls', `/local/domain/${domid}/data`);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toContain('kernel = "xenbox-pvkernel"');
    expect(ls.stdout).toMatch(/memory-kb = "\d+"/);
    expect(ls.stdout).toMatch(/boot-ms = "\d+"/);
  });

  it('serves xenstore-read/-write/-ls from its shell, with xenstored\'s errors as -errno', async () => {
    const domid = (await listed('pvk-shell'))!.domid;
    expect(await typedIn(shell, 'xenstore-read name', /\r\npvk-shell\r\npvkernel> /)).toBeTruthy();
    expect(await typedIn(shell, `xenstore-read /local/domain/${domid}/domid`, new RegExp(`\r\n${domid}\r\npvkernel> `))).toBeTruthy();
    await typedIn(shell, 'xenstore-write data/greeting "hello xenstore"', /pvkernel> $/);
    if (existsSync(XS_UTILS)) {
      const r = await xenstoreTool('read', `/local/domain/${domid}/data/greeting`);
      expect(r.stdout.trim()).toBe('hello xenstore');
      const w = await xenstoreTool('write', `/local/domain/${domid}/data/from-dom0`, 'written by dom0');
      expect(w.code, w.stderr).toBe(0);
      expect(await typedIn(shell, 'xenstore-read data/from-dom0', /\r\nwritten by dom0\r\npvkernel> /)).toBeTruthy();
    }
    expect(await typedIn(shell, 'xenstore-ls', /pvkernel> $/)).toMatch(/name = "pvk-shell"[^]*data = ""[^]*\r\n greeting = "hello xenstore"/);
    // Hostile or mistaken requests come back as xenstored's errors, and the shell carries on.
    expect(await typedIn(shell, 'xenstore-read data/no-such-node', /error -2\r\npvkernel> /)).toBeTruthy();
    expect(await typedIn(shell, 'xenstore-write /local/domain/0/evil x', /error -13\r\npvkernel> /)).toBeTruthy();
    expect(await typedIn(shell, 'xenstore-read bad//path', /error -22\r\npvkernel> /)).toBeTruthy();
    await typedIn(shell, 'xenstore-rm data/greeting', /pvkernel> $/);
    expect(await typedIn(shell, 'xenstore-read data/greeting', /error -2\r\npvkernel> /)).toBeTruthy();
  });

  it('redoes a transaction whose commit failed with EAGAIN, and sees watch events for its node', async (ctx) => {
    // Needs Debian's xenstore-utils (CI installs them) to write from outside the guest.
    if (!existsSync(XS_UTILS)) ctx.skip();
    const domid = (await listed('pvk-shell'))!.domid;
    const node = `/local/domain/${domid}/data/counter`;
    await typedIn(shell, 'xenstore-write data/counter 5', /pvkernel> $/);
    // The guest reads 5 in a transaction and waits 2 s before writing 6; dom0 writes 100 meanwhile, so the commit
    // fails with EAGAIN and the guest redoes it from 100.
    const from = shell.out().length;
    shell.type('xenstore-inc data/counter wait=2000\r');
    await new Promise((r) => setTimeout(r, 500));
    expect((await xenstoreTool('write', node, '100')).code).toBe(0);
    await until('the increment', () => /xenstore-inc data\/counter: \d+ \(\d+ retries\)/.test(shell.out().slice(from)), 15_000, () => shell.out().slice(from));
    expect(shell.out().slice(from)).toContain('xenstore-inc data/counter: 101 (1 retries)');
    expect((await xenstoreTool('read', node)).stdout.trim()).toBe('101');
    // A watch fires once when set, then on every write.
    const w = shell.out().length;
    shell.type('xenstore-watch data/counter 2\r');
    await until('the first watch event', () => shell.out().slice(w).includes('watch 1: data/counter = 101'));
    expect((await xenstoreTool('write', node, 'changed by dom0')).code).toBe(0);
    await until('the second watch event', () => /watch 2: data\/counter = changed by dom0\r\npvkernel> $/.test(shell.out().slice(w)), 10_000, () => shell.out().slice(w));
  }, 30_000);

  it('grants dom0 a page that dom0 maps; ending the grant is -EBUSY while it is mapped, then works once', async () => {
    const domid = (await listed('pvk-shell'))!.domid;
    const out = await typedIn(shell, 'grant 0 ro', /gref \d+ [^]*pvkernel> $/);
    const gref = Number(/gref (\d+)/.exec(out)![1]);
    expect(gref).toBeGreaterThanOrEqual(8); // refs 0..7 are reserved
    const mapper = new GrantMapper(dom0);
    const { handle, page } = await mapper.mapOne(domid, gref, true);
    const want = `xenbox pvkernel: page granted to d0 as gref ${gref}`;
    expect(Buffer.from(page.read(0, want.length)).toString('latin1')).toBe(want);
    expect(await typedIn(shell, `ungrant ${gref}`, /ungrant \d+: -?\d+\r\npvkernel> $/)).toContain(`ungrant ${gref}: -16`);
    await mapper.unmap([{ handle, page }]);
    expect(await typedIn(shell, `ungrant ${gref}`, /ungrant \d+: -?\d+\r\npvkernel> $/)).toContain(`ungrant ${gref}: 0`);
    expect(await typedIn(shell, `ungrant ${gref}`, /ungrant \d+: -?\d+\r\npvkernel> $/)).toContain(`ungrant ${gref}: -22`);
    expect(await typedIn(shell, 'ungrant 1', /ungrant \d+: -?\d+\r\npvkernel> $/)).toContain('ungrant 1: -22'); // reserved: xenstore's
  });

  it('keeps its xenstore and console rings across a xenstored restart and a xenconsoled restart', async () => {
    const before = await stack.service('xenstored');
    expect((await stack.run('kill', 'xenstored')).code).toBe(0);
    await stack.waitFor('xenstored', (st) => st.state === 'ready' && st.domid !== before.domid, 15_000);
    await until('the guests re-introduced', () => readFileSync(runDirLayout(stack.runDir).logFile('xenbox'), 'utf8').includes('rings reconnected to the new xenstored'));
    expect(await typedIn(shell, 'xenstore-read name', /\r\npvk-shell\r\npvkernel> /)).toBeTruthy();
    expect((await stack.run('kill', 'xenconsoled')).code).toBe(0);
    await stack.waitFor('xenconsoled', (st) => st.state === 'ready' && st.restarts > 0, 15_000);
    // xl console's connection went with the old xenconsoled: attach again, and type until the new one serves the ring.
    shell.close();
    shell = attach('pvk-shell');
    await until('the new xenconsoled to carry a line both ways', async () => {
      const from = shell.out().length;
      shell.type('echo after restart\r');
      await new Promise((r) => setTimeout(r, 500));
      return /\r\nafter restart\r\npvkernel> /.test(shell.out().slice(from));
    }, 20_000);
  }, 60_000);

  it('powers off on `poweroff` (on_poweroff = destroy)', async () => {
    shell.type('poweroff\r');
    await until('the domain to be gone', async () => !(await listed('pvk-shell')), 15_000);
    expect(consoleLog('pvk-shell')).toContain('reboot: Power down');
  }, 30_000);

  it('starts the shell for a workload nobody knows, and `reboot` restarts the domain (on_reboot = restart), its vif keeping the MAC libxl chose', async () => {
    const r = await xl('create', config('pvk-reboot', { cmdline: '"nosuchworkload ip=10.0.0.9"', on_reboot: '"restart"', vif: '[ "bridge=xenbr0" ]' }));
    expect(r.code, r.stderr).toBe(0);
    const first = (await listed('pvk-reboot'))!.domid;
    const macOf = async () => / (00:16:3e:[0-9a-f:]{8}) /.exec((await xl('network-list', 'pvk-reboot')).stdout)?.[1];
    const mac = await macOf();
    expect(mac).toBeDefined();
    await until('the prompt', () => consoleLog('pvk-reboot').includes('pvkernel> '), 15_000, () => `; console:\n${consoleLog('pvk-reboot')}`);
    expect(consoleLog('pvk-reboot')).toContain("no workload 'nosuchworkload': starting the shell");
    const con = attach('pvk-reboot');
    await typedIn(con, 'cmdline', /nosuchworkload ip=10\.0\.0\.9\r\npvkernel> /);
    con.type('reboot\r');
    const again = await until('a new incarnation', async () => {
      const row = await listed('pvk-reboot');
      return row && row.domid !== first && row;
    }, 15_000);
    expect(again.domid).not.toBe(first);
    expect(consoleLog('pvk-reboot')).toContain('reboot: Restarting system');
    expect(await until('the new incarnation\'s vif', macOf, 15_000)).toBe(mac);
    await xl('destroy', 'pvk-reboot');
  }, 40_000);

  it('gives up on a xenstore ring whose indexes are more than a ring apart: -EIO for every request, and the shell goes on', async () => {
    const r = await xl('create', config('pvk-hostile', { cmdline: '"shell"' }));
    expect(r.code, r.stderr).toBe(0);
    await until('the prompt', () => consoleLog('pvk-hostile').includes('pvkernel> '), 15_000, () => `; console:\n${consoleLog('pvk-hostile')}`);
    expect(consoleLog('pvk-hostile')).not.toContain('no xenstore');
    const domid = (await listed('pvk-hostile'))!.domid;
    const con = attach('pvk-hostile');
    expect(await typedIn(con, 'xenstore-read name', /\r\npvk-hostile\r\npvkernel> /)).toBeTruthy();
    // As a broken xenstored would: rsp_cons (offset 2056 of the ring page) moved 5000 bytes back.
    const { value: gfn } = await dom0.call('hvm.get_param', { domid, index: HVM_PARAM.STORE_PFN });
    const fm = new ForeignMemory(dom0);
    const idx = Buffer.from(await fm.read(domid, gfn, 2056, 8));
    const bad = Buffer.alloc(4);
    bad.writeUInt32LE((idx.readUInt32LE(4) - 5000) >>> 0);
    await fm.write(domid, gfn, 2056, bad);
    const out = await typedIn(con, 'xenstore-read name', /error -5\r\npvkernel> $/);
    expect(out).toContain("xenbus: xenstored's rsp indexes are more than a ring apart: no more xenstore requests");
    expect(await typedIn(con, 'xenstore-write data/x y', /error -5\r\npvkernel> $/)).not.toContain('no more xenstore requests'); // said once
    expect(await typedIn(con, 'echo still here', /\r\nstill here\r\npvkernel> /)).toBeTruthy();
    con.close();
  }, 40_000);

  it('crashes on `crash` (a store access fault, a panic, SHUTDOWN_crash), and on_crash = preserve keeps it listed as crashed', async () => {
    // The domain the previous test left (its xenstore given up on), or a fresh one.
    if (!(await listed('pvk-hostile'))) expect((await xl('create', config('pvk-hostile', { cmdline: '"shell"' }))).code).toBe(0);
    await until('the prompt', () => consoleLog('pvk-hostile').includes('pvkernel> '));
    const con = attach('pvk-hostile');
    await typedIn(con, 'echo ready', /\r\nready\r\npvkernel> /);
    con.type('crash\r');
    await until('the panic', () => consoleLog('pvk-hostile').includes('end Kernel panic'), 10_000, () => `; console:\n${consoleLog('pvk-hostile')}`);
    const text = consoleLog('pvk-hostile');
    expect(text).toMatch(/Oops: store access fault \(scause 7\) at pc [0-9a-f]{16}, address 0000000000000008/);
    expect(text).toContain('Kernel panic - not syncing: fatal exception');
    const d = await until('xl list to show it crashed', async () => {
      const row = await listed('pvk-hostile');
      return row && row.state.includes('c') && row;
    });
    expect(d.state).toMatch(/c/);
  }, 30_000);
});

/** batch 1 of `cpu`: cpu_work(CPU_WORK_SEED, CPU_WORK_BATCH) of packages/guests/pvkernel/cpu-work.h, recomputed here independently. */
const CPU_BATCH1_CHECKSUM = computeCpuChecksum();

function computeCpuChecksum(): string {
  const M = (1n << 64n) - 1n;
  let x = 0x9e3779b97f4a7c15n;
  let acc = 0n;
  for (let i = 0; i < 100_000; i++) {
    x ^= (x << 13n) & M;
    x ^= x >> 7n;
    x ^= (x << 17n) & M;
    acc = (acc + (((x * 2654435761n) & M) / ((x & 0xffffn) | 1n))) & M;
  }
  return (acc ^ x).toString(16).padStart(16, '0');
}
