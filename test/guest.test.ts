/**
 * RISC-V PVH guests under the whole stack: xl create builds them, the
 * scheduler runs them, xl list / dmesg / console / shutdown see them, and the
 * per-guest monitor applies on_poweroff / on_crash.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDirLayout } from '@xenbox/abi';
import { leftoverProcesses } from '@xenbox/dom0';
import { TestStack } from './helpers/stack.js';
import { REPO, tempRunDir } from './helpers/paths.js';

const XL_BIN = resolve(REPO, 'packages/dom0/bin/xl.js');
const image = (name: string) => resolve(REPO, `packages/guests/images/pvh-${name}.elf`);
let stack: TestStack;

const xl = (...args: string[]) => stack.xl(...args);

function config(name: string, lines: Record<string, string | number>): string {
  const file = join(stack.runDir, `${name}.cfg`);
  const body = Object.entries({ name: `"${name}"`, type: '"pvh"', memory: 16, ...lines }).map(([k, v]) => `${k} = ${v}`).join('\n');
  writeFileSync(file, body + '\n');
  return file;
}

/** The xl list row of a domain, split into columns, or undefined. */
async function row(name: string): Promise<{ domid: number; mem: number; vcpus: number; state: string; time: number } | undefined> {
  const line = (await xl('list')).stdout.split('\n').find((l) => l.startsWith(name + ' '));
  if (!line) return undefined;
  const [, domid, mem, vcpus, state, time] = line.split(/\s+/);
  return { domid: Number(domid), mem: Number(mem), vcpus: Number(vcpus), state: state!, time: Number(time) };
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 5000, explain?: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${explain ? `\n${await explain()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What xl and the logs say of a domain, for a timeout's message: a failure on a loaded CI machine must explain itself. */
async function whatTheStackSays(name: string): Promise<string> {
  const layout = runDirLayout(stack.runDir);
  const tail = (file: string, n: number): string => {
    try {
      return readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
    } catch (e) {
      return String(e);
    }
  };
  return [
    `xl list:\n${(await xl('list')).stdout}`,
    `xl vcpu-list ${name}:\n${(await xl('vcpu-list', name)).stdout}`,
    `xl dmesg (tail):\n${(await xl('dmesg')).stdout.split('\n').slice(-15).join('\n')}`,
    `console log of ${name}: ${JSON.stringify(tail(layout.consoleLog(name), 3))}`,
    `hypervisor log (tail):\n${tail(layout.logFile('hypervisor'), 10)}`,
  ].join('\n');
}

beforeAll(async () => {
  stack = await TestStack.up('guest');
});
afterAll(async () => {
  await stack?.destroy();
});

describe('a PVH guest that prints and idles', () => {
  it('is built by xl create, runs, and its console reaches xl dmesg and xenconsoled', async () => {
    const r = await xl('create', config('hello', { kernel: `"${image('hello')}"` }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Domain \d+ \(hello\) created/);
    const d = await until('hello in xl list', () => row('hello'));
    expect(d.mem).toBe(16);
    expect(d.vcpus).toBe(1);
    const greeting = 'Hello from a xenbox PVH guest on vCPU 0';
    await until('the greeting in dmesg', async () => (await xl('dmesg')).stdout.includes(`(d${d.domid}) ${greeting}`));
    await until('the console log', async () => readFileSync(runDirLayout(stack.runDir).consoleLog('hello'), 'utf8').includes(greeting));
  });

  it('shows its console to xl console, backlog included', async () => {
    const r = await xl('console', 'hello');
    expect(r.stdout).toContain('Hello from a xenbox PVH guest on vCPU 0');
  });

  it('uses no CPU while it waits in WFI', async () => {
    const before = (await row('hello'))!.time;
    await new Promise((r) => setTimeout(r, 1000));
    const after = await row('hello');
    expect(after!.time - before).toBeLessThan(0.05);
    expect(after!.state).toMatch(/^-b/);
  });

  it('is not shut down gracefully without a PV control interface, only with -F', async () => {
    const refused = await xl('shutdown', 'hello');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('PV control interface not available');
    const forced = await xl('shutdown', '-F', '-w', 'hello');
    expect(forced.code, forced.stderr).toBe(0);
    // on_poweroff defaults to destroy: the monitor xl left behind removes it.
    await until('hello to be destroyed', async () => (await row('hello')) === undefined);
  });
});

describe('a CPU-bound guest', () => {
  it('accumulates CPU time while running, and xl destroy stops it', async () => {
    expect((await xl('create', config('spin', { kernel: `"${image('spin')}"` }))).code).toBe(0);
    const d = await until('spin to burn a second of CPU', async () => {
      const x = await row('spin');
      return x && x.time >= 0.5 ? x : undefined;
    });
    expect(d.state[0]).toBe('r');
    expect((await xl('destroy', 'spin')).code).toBe(0);
    expect(await row('spin')).toBeUndefined();
  });
});

describe('guests that shut themselves down', () => {
  it('a guest that powers off is destroyed (on_poweroff = destroy)', async () => {
    expect((await xl('create', config('off', { kernel: `"${image('poweroff')}"` }))).code).toBe(0);
    await until('off to be gone', async () => (await row('off')) === undefined);
    expect((await xl('dmesg')).stdout).toMatch(/shut down \(poweroff\)/);
  });

  it('a crashed guest is kept for inspection with on_crash = preserve, state c', async () => {
    expect((await xl('create', config('boom', { kernel: `"${image('crash')}"`, on_crash: '"preserve"' }))).code).toBe(0);
    const d = await until('boom to crash', async () => {
      const x = await row('boom');
      return x && x.state[3] === 's' ? x : undefined;
    });
    // xl list: shutdown 's', then the reason letter from "-rscwS": crash is 'c'.
    expect(d.state.slice(3, 5)).toBe('sc');
    expect((await xl('dmesg')).stdout).toContain(`(d${d.domid}) panic: unexpected trap`);
    await xl('destroy', 'boom');
  });

  it('a crashed guest comes back as a new domain with on_crash = restart', async () => {
    const created = await xl('create', config('again', { kernel: `"${image('crash')}"`, on_crash: '"restart"' }));
    expect(created.code, created.stderr).toBe(0);
    // The first domid is the one xl create names: the guest crashes within milliseconds, and the
    // monitor may restart it ten times (then preserve it) before a loaded machine's first xl list.
    const first = Number(/Domain (\d+) \(again\) created/.exec(created.stderr)?.[1]);
    expect(first).toBeGreaterThan(0);
    const next = await until('a restarted domain', async () => {
      const x = await row('again');
      return x && x.domid !== first ? x : undefined;
    }, 15_000);
    expect(next.domid).toBeGreaterThan(first);
    expect(readFileSync(runDirLayout(stack.runDir).logFile('xl-again'), 'utf8')).toContain('action is restart');
    // Stop the loop: destroy it until the monitor has nothing left to restart.  A destroy that
    // lands while the monitor is between two incarnations is followed by a new one, so gone
    // means gone from xl list *and* the monitor saying it is done.
    const monitorDone = (): boolean => /nothing left to do|leaving the domain as it is/.test(readFileSync(runDirLayout(stack.runDir).logFile('xl-again'), 'utf8'));
    await until('again to stay gone', async () => {
      await xl('destroy', 'again');
      await new Promise((r) => setTimeout(r, 300));
      return (await row('again')) === undefined && monitorDone();
    }, 20_000);
  });
});

describe('xl create', () => {
  it('-p leaves the guest paused until xl unpause', async () => {
    expect((await xl('create', '-p', config('later', { kernel: `"${image('hello')}"` }))).code).toBe(0);
    const d = await until('later', () => row('later'));
    expect(d.state[2]).toBe('p');
    expect((await xl('dmesg')).stdout).not.toContain(`(d${d.domid}) Hello`);
    expect((await xl('unpause', 'later')).code).toBe(0);
    await until('later to greet', async () => (await xl('dmesg')).stdout.includes(`(d${d.domid}) Hello`), 10_000, () => whatTheStackSays('later'));
    await xl('destroy', 'later');
  });

  it('names a missing kernel and leaves no domain behind', async () => {
    const r = await xl('create', config('nokernel', { kernel: '"/nonexistent/kernel.elf"' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/nonexistent/kernel.elf');
    expect(await row('nokernel')).toBeUndefined();
  });

  it('refuses a kernel that is not an RV64 ELF', async () => {
    const bogus = join(stack.runDir, 'bogus.elf');
    writeFileSync(bogus, 'not an elf at all');
    const r = await xl('create', config('bogus', { kernel: `"${bogus}"` }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ENOEXEC');
    expect(await row('bogus')).toBeUndefined();
  });

  it('refuses what xenbox cannot build yet, saying what', async () => {
    const r = await xl('create', config('withramdisk', { kernel: `"${image('hello')}"`, ramdisk: `"${image('hello')}"` }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ramdisk= is not supported');
    expect(await row('withramdisk')).toBeUndefined();
  });

  it('-n prints the parsed configuration without creating anything', async () => {
    const r = await xl('create', '-n', config('dry', { kernel: `"${image('hello')}"`, vcpus: 2 }));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'dry', type: 'pvh', vcpus: 2, memoryMiB: 16 });
    expect(await row('dry')).toBeUndefined();
  });
});

describe('xenbox down with guests', () => {
  it('destroys the guests first and leaves no monitor behind', async () => {
    expect((await xl('create', config('last', { kernel: `"${image('hello')}"` }))).code).toBe(0);
    await until('last', () => row('last'));
    const r = await stack.run('down');
    expect(r.code, r.stderr).toBe(0);
    expect(leftoverProcesses(stack.runDir)).toEqual([]);
    expect(readFileSync(runDirLayout(stack.runDir).logFile('xenbox'), 'utf8')).toContain('guest destroyed');
  });
});

describe('autostart', () => {
  it('xenbox up creates the guests of the autostart directory, each with its monitor', async () => {
    const auto = new TestStack(tempRunDir('auto'));
    try {
      const cfg = join(auto.runDir, 'stack.json');
      writeFileSync(cfg, JSON.stringify({ autostart: resolve(REPO, 'examples/autostart') }));
      const up = await auto.run('up', '--detach', '--config', cfg);
      expect(up.code, up.stderr).toBe(0);
      const env = { ...process.env, XENBOX_RUN_DIR: auto.runDir };
      const list = await new Promise<string>((res) => execFile(process.execPath, [XL_BIN, 'list'], { env }, (_e, out) => res(out)));
      expect(list).toMatch(/\nhello +\d+ +16 +1 /);
      await until('the greeting in its console log', async () => {
        try {
          return readFileSync(runDirLayout(auto.runDir).consoleLog('hello'), 'utf8').includes('Hello from a xenbox PVH guest');
        } catch {
          return false;
        }
      });
      expect(readFileSync(runDirLayout(auto.runDir).logFile('xenbox'), 'utf8')).toContain('guest started');
    } finally {
      await auto.destroy();
    }
  });
});
