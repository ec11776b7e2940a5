/**
 * vCPUs and scheduling under the whole stack, on 2 pCPUs: xl vcpu-list /
 * vcpu-pin / sched-credit2 / cpupool-* / top against real RISC-V guests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStackConfig } from '@xenbox/dom0';
import { TestStack } from './helpers/stack.js';
import { REPO } from './helpers/paths.js';

const image = (name: string) => resolve(REPO, `packages/guests/images/pvh-${name}.elf`);
let stack: TestStack;

const xl = (...args: string[]) => stack.xl(...args);

async function ok(...args: string[]): Promise<string> {
  const r = await xl(...args);
  expect(r.code, `xl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

function config(name: string, kernel: string, extra: Record<string, string | number> = {}): string {
  const file = join(stack.runDir, `${name}.cfg`);
  const lines = { name: `"${name}"`, type: '"pvh"', memory: 16, kernel: `"${image(kernel)}"`, ...extra };
  writeFileSync(file, Object.entries(lines).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');
  return file;
}

/** The vcpu-list row of a domain's vCPU 0, split into columns. */
async function vcpu0(name: string): Promise<{ cpu: string; state: string; time: number; affinity: string }> {
  const line = (await ok('vcpu-list', name)).split('\n')[1]!;
  const [, , , cpu, state, time, ...aff] = line.split(/\s+/);
  return { cpu: cpu!, state: state!, time: Number(time), affinity: aff.join(' ') };
}

async function cpuSeconds(name: string): Promise<number> {
  const line = (await ok('list', name)).split('\n')[1]!;
  return Number(line.trim().split(/\s+/).pop());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A 2-pCPU stack without the example guests (autostart off where the stack config knows it). */
function stackConfig(dir: string): string {
  const cfg: Record<string, unknown> = { hypervisor: { pcpus: 2 } };
  try {
    parseStackConfig({ autostart: null });
    cfg.autostart = null;
  } catch {
    // this build has no autostart
  }
  const file = join(dir, 'sched-stack.json');
  writeFileSync(file, JSON.stringify(cfg));
  return file;
}

let configDir: string;

beforeAll(async () => {
  configDir = mkdtempSync(join(tmpdir(), 'xenbox-xl-sched-'));
  stack = await TestStack.up('xl-sched', ['--config', stackConfig(configDir)]);
  expect(await ok('create', config('spin', 'spin'))).toBe('');
}, 30_000);

afterAll(async () => {
  await xl('destroy', 'spin').catch(() => undefined);
  await xl('destroy', 'hello').catch(() => undefined);
  await stack?.destroy();
  rmSync(configDir, { recursive: true, force: true });
});

describe('the host as xl sees it', () => {
  it('has the 2 pCPUs the stack config asked for, all in Pool-0', async () => {
    expect((await ok('info', 'nr_cpus')).trim()).toBe('2');
    expect(await ok('cpupool-list', '-c')).toBe('Name               CPU list\nPool-0             0,1\n');
    expect(await ok('cpupool-list')).toMatch(/^Name               CPUs   Sched     Active   Domain count\nPool-0               2   credit2       y          1\n$/);
  });
});

describe('a spinning guest', () => {
  it('shows in vcpu-list running on a pCPU, its time growing', async () => {
    const out = await ok('vcpu-list');
    expect(out.split('\n')[0]).toBe('Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)');
    const a = await vcpu0('spin');
    expect(['0', '1']).toContain(a.cpu);
    expect(a.state).toBe('r--');
    expect(a.affinity).toBe('all / all');
    await sleep(300);
    expect((await vcpu0('spin')).time).toBeGreaterThan(a.time);
  });

  it('stays on pCPU 1 once pinned there', async () => {
    expect(await ok('vcpu-pin', 'spin', '0', '1')).toBe('');
    await sleep(200);
    for (let i = 0; i < 3; i++) {
      const v = await vcpu0('spin');
      expect(v.cpu).toBe('1');
      expect(v.affinity).toBe('1 / all');
      await sleep(100);
    }
    expect(await ok('vcpu-pin', 'spin', 'all', 'all')).toBe('');
    expect((await vcpu0('spin')).affinity).toBe('all / all');
  });

  it('has credit2 weight and cap that sched-credit2 shows and sets', async () => {
    const header = 'Name                                ID Weight  Cap\n';
    expect(await ok('sched-credit2', '-d', 'spin')).toMatch(new RegExp(`^${header}spin {30}\\s+\\d+    256    0\\n$`));
    expect(await ok('sched-credit2', '-d', 'spin', '-w', '512', '-c', '25')).toBe('');
    expect(await ok('sched-credit2', '-d', 'spin')).toMatch(/ 512   25\n$/);
    expect(await ok('sched-credit2')).toMatch(/^Cpupool Pool-0: ratelimit=1000us\nName .*\nspin .* 512   25\n$/);
  });

  it('gets about a quarter of a pCPU under cap 25', async () => {
    await sleep(100);
    const t0 = await cpuSeconds('spin');
    const w0 = performance.now();
    await sleep(1500);
    const share = ((await cpuSeconds('spin')) - t0) / ((performance.now() - w0) / 1000);
    expect(share).toBeGreaterThan(0.1);
    expect(share).toBeLessThan(0.45);
    await ok('sched-credit2', '-d', 'spin', '-c', '0');
  });

  it('shows in one batch of xl top with its CPU share', async () => {
    const out = await ok('top', '-d', '0.5');
    expect(out.split('\n')[0]).toBe(
      '      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID',
    );
    const row = out.split('\n').find((l) => l.trimStart().startsWith('spin '))!;
    const pct = Number(row.trim().split(/\s+/)[3]);
    expect(pct).toBeGreaterThan(50);
  });
});

describe('cpupools', () => {
  it('take a pCPU from Pool-0 and a domain migrated into them', async () => {
    expect(await ok('cpupool-cpu-remove', 'Pool-0', '1')).toBe('');
    expect(await ok('cpupool-create', 'name=fast', 'sched=credit2', 'cpus=1')).toBe(
      'Using config file "command line"\ncpupool name:   fast\nscheduler:      credit2\nnumber of cpus: 1\n',
    );
    expect(await ok('cpupool-migrate', 'spin', 'fast')).toBe('');
    expect(await ok('cpupool-list')).toBe(
      'Name               CPUs   Sched     Active   Domain count\nPool-0               1   credit2       y          0\nfast                 1   credit2       y          1\n',
    );
    await sleep(300);
    expect((await vcpu0('spin')).cpu).toBe('1');
    expect(await ok('cpupool-rename', 'fast', 'quick')).toBe('');
    expect(await ok('cpupool-list', '-c', 'quick')).toBe('Name               CPU list\nquick              1\n');
  });

  it('cannot be destroyed while a domain is in them; can once it left', async () => {
    const busy = await xl('cpupool-destroy', 'quick');
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain("Can't destroy cpupool 'quick'");
    await ok('cpupool-migrate', 'spin', 'Pool-0');
    await ok('cpupool-destroy', 'quick');
    await ok('cpupool-cpu-add', 'Pool-0', '1');
    expect(await ok('cpupool-list', '-c')).toBe('Name               CPU list\nPool-0             0,1\n');
  });
});

describe('a guest created with scheduling keys', () => {
  it('starts with its cpu_weight, cap and cpus applied', async () => {
    await ok('create', config('hello', 'hello', { cpu_weight: 128, cap: 50, cpus: '"1"' }));
    expect(await ok('sched-credit2', '-d', 'hello')).toMatch(/ 128   50\n$/);
    expect((await vcpu0('hello')).affinity).toBe('1 / all');
    await ok('destroy', 'hello');
  });

  it('is refused with the key named when cpus= names a pCPU the host lacks', async () => {
    const r = await xl('create', config('bad', 'hello', { cpus: '"5"' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cpus="5".*CPU 5/);
    expect(await ok('list')).not.toMatch(/^bad /m);
  });
});

/** Bad-argument cases run in parallel (each is one short-lived xl process). */
const results = new Map<string, ReturnType<typeof xl>>();
const BAD: Array<[string[], string]> = [
    [['vcpu-pin', 'spin', 'x', '1'], 'Error: Invalid argument x as VCPU.'],
    [['vcpu-pin', 'spin', '0', '9'], 'CPU 9'],
    [['vcpu-pin', '-f', 'spin', 'all', '1'], "Error: --force and 'all' as VCPU not allowed."],
    [['vcpu-set', 'spin', 'lots'], 'Error: Invalid argument.'],
    [['vcpu-set', 'spin', '8'], 'You are overcommmitting! You have 2 physical CPUs and want 8 vCPUs!'],
    [['sched-credit2', '-w', '10'], 'Must specify a domain.'],
    [['sched-credit2', '-d', 'spin', '-w', '70000'], 'Cpu weight out of range'],
    [['sched-credit2', '-d', 'spin', '-c', '-5'], 'libxl_domain_sched_params_set failed.'],
    [['sched-credit2', '-p', 'Pool-0', '-d', 'spin'], 'Specifying a cpupool is not allowed with other options.'],
    [['sched-credit2', '-d', 'nosuch'], "Domain 'nosuch' does not exist."],
    [['sched-rtds', '-d', 'spin'], 'libxl_domain_sched_params_get returned credit2 not rtds.'],
    [['sched-rtds', '-d', 'spin', '-p', '100'], 'Must specify VCPU.'],
    [['cpupool-list', 'nosuch'], "Pool 'nosuch' does not exist"],
    [['cpupool-create', 'sched=credit2'], 'Missing cpupool name!'],
    [['cpupool-create', 'name=Pool-0'], 'Pool name "Pool-0" already exists'],
    [['cpupool-create', 'name=x', 'cpus=0'], 'cpu 0 illegal or not free'],
    [['cpupool-create', 'name=x', 'sched=credit9'], 'Unknown scheduler'],
    [['cpupool-migrate', 'spin', 'nosuch'], "unknown cpupool 'nosuch'"],
    [['cpupool-migrate', 'nosuch', 'Pool-0'], "unknown domain 'nosuch'"],
];

describe('bad arguments', () => {
  beforeAll(() => {
    for (const [args] of BAD) results.set(args.join(' '), xl(...args));
  });
  it.each(BAD)('xl %j says what is wrong and exits 1', async (args, msg) => {
    const r = await results.get(args.join(' '))!;
    expect(r.stderr).toContain(msg);
    expect(r.code).toBe(1);
  });
});
