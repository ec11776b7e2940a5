/**
 * `xl mem-set`, `xl mem-max`, `xl rename` and `xl shutdown -a` against a
 * running stack: what they change in xenstore and in the hypervisor, and how
 * they refuse.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';
import { TestStack } from './helpers/stack.js';

let stack: TestStack;
const xl = (...args: string[]) => stack.xl(...args);

function xsRead(path: string): Promise<string> {
  return new Promise((res, rej) =>
    execFile('/usr/bin/xenstore-read', [path], { env: { ...process.env, XENSTORED_PATH: join(stack.runDir, 'xenstored/socket') } }, (err, out, stderr) =>
      err ? rej(new Error(`xenstore-read ${path}: ${stderr}`)) : res(out.trimEnd()),
    ),
  );
}

beforeAll(async () => {
  stack = await TestStack.up('xlmem');
  const cfg = join(stack.runDir, 'm.cfg');
  writeFileSync(cfg, `name = "m"\nkernel = "${REPO}/packages/guests/images/pvh-spin.elf"\nmemory = 16\nmaxmem = 32\n`);
  const r = await xl('create', '-p', cfg);
  if (r.code !== 0) throw new Error(r.stderr);
});
afterAll(async () => {
  await stack?.destroy();
});

describe('xl mem-set / mem-max', () => {
  it('the builder writes memory/static-max and memory/target in KiB', async () => {
    const d = (await xl('domid', 'm')).stdout.trim();
    expect(await xsRead(`/local/domain/${d}/memory/static-max`)).toBe(String(32 * 1024));
    expect(await xsRead(`/local/domain/${d}/memory/target`)).toBe(String(16 * 1024));
  });

  it('mem-set moves the balloon target and leaves static-max alone', async () => {
    const d = (await xl('domid', 'm')).stdout.trim();
    const r = await xl('mem-set', 'm', '12m');
    expect(r.code, r.stderr).toBe(0);
    expect(await xsRead(`/local/domain/${d}/memory/target`)).toBe(String(12 * 1024));
    const long = JSON.parse((await xl('list', '-l', 'm')).stdout) as Array<{ config: { b_info: { max_memkb: number } } }>;
    expect(long[0]!.config.b_info.max_memkb).toBe(32 * 1024);
  });

  it('mem-set above static-max and mem-max below the target are refused, nothing changed', async () => {
    const d = (await xl('domid', 'm')).stdout.trim();
    const up = await xl('mem-set', 'm', '64');
    expect(up.code).toBe(1);
    expect(up.stderr).toContain('memory_dynamic_max must be less than or equal to memory_static_max');
    const down = await xl('mem-max', 'm', '8m');
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`cannot set domid ${d} static max memory to : 8m`);
    expect(await xsRead(`/local/domain/${d}/memory/target`)).toBe(String(12 * 1024));
    expect(await xsRead(`/local/domain/${d}/memory/static-max`)).toBe(String(32 * 1024));
  });

  it('mem-max raises static-max; a malformed size is named', async () => {
    const d = (await xl('domid', 'm')).stdout.trim();
    expect((await xl('mem-max', 'm', '1g')).code).toBe(0);
    expect(await xsRead(`/local/domain/${d}/memory/static-max`)).toBe(String(1024 * 1024));
    const bad = await xl('mem-set', 'm', '12x');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('invalid memory size: 12x\n');
  });
});

describe("a guest's balloon follows xl mem-set", () => {
  it('the PV kernel gives pages back and takes them again; xl list shows it', async () => {
    const cfg = join(stack.runDir, 'b.cfg');
    writeFileSync(cfg, `name = "b"\nkernel = "${REPO}/packages/guests/images/pvkernel.elf"\ncmdline = "shell"\nmemory = 32\nmaxmem = 32\n`);
    expect((await xl('create', cfg)).code).toBe(0);
    const mem = async () => Number((await xl('list', 'b')).stdout.split('\n')[1]!.slice(46, 52));
    const until = async (want: number) => {
      const deadline = Date.now() + 20_000;
      while ((await mem()) !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      return mem();
    };
    expect(await until(32)).toBe(32);
    expect((await xl('mem-set', 'b', '20m')).code).toBe(0);
    expect(await until(20)).toBe(20);
    expect((await xl('mem-set', 'b', '28')).code).toBe(0);
    expect(await until(28)).toBe(28);
    expect((await xl('destroy', 'b')).code).toBe(0);
  });
});

describe('xl rename', () => {
  it('renames in the hypervisor list, in xenstore and in list -l; a taken name is refused', async () => {
    const d = (await xl('domid', 'm')).stdout.trim();
    expect((await xl('rename', 'm', 'm2')).code).toBe(0);
    expect((await xl('domid', 'm2')).stdout.trim()).toBe(d);
    expect(await xsRead(`/local/domain/${d}/name`)).toBe('m2');
    const vm = await xsRead(`/local/domain/${d}/vm`).catch(() => null);
    if (vm) expect(await xsRead(`${vm}/name`)).toBe('m2');
    expect((await xl('list', '-l', 'm2')).stdout).toContain('"name": "m2"');
    const taken = await xl('rename', 'm2', 'netback');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('already exists');
    expect((await xl('domid', 'm2')).stdout.trim()).toBe(d);
  });
});

describe('xl shutdown -a', () => {
  it('shuts every guest down (-F: hypervisor-initiated) and waits; the driver domains stay', async () => {
    const cfg = join(stack.runDir, 's.cfg');
    writeFileSync(cfg, `name = "s"\nkernel = "${REPO}/packages/guests/images/pvh-spin.elf"\nmemory = 16\n`);
    expect((await xl('create', cfg)).code).toBe(0);
    const nb = (await stack.service('netback')).domid;
    const r = await xl('shutdown', '-a', '-F', '-w');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Waiting for 2 domains');
    const list = (await xl('list')).stdout;
    expect(list).not.toMatch(/^s /m);
    expect(list).toMatch(new RegExp(`^netback +${nb} `, 'm'));
    expect((await xl('shutdown', '-a', 'netback')).code).toBe(1);
    expect((await xl('shutdown')).code).toBe(2);
  });
});
