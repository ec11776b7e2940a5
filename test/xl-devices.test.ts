/**
 * The toolstack side of split devices against a running stack: `disk=` and
 * `vif=` in a config, `xl block-*` and `xl network-*`, the xenstore
 * directories libxl would write (read back with Xen's own xenstore-read),
 * and devices following a driver domain that is killed and restarted as a
 * new domain.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { runDirLayout } from '@xenbox/abi';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';
import { TestStack } from './helpers/stack.js';

let stack: TestStack;
let img: string;

const xl = (...args: string[]) => stack.xl(...args);

function xsRead(path: string): Promise<string> {
  return new Promise((res, rej) =>
    execFile('/usr/bin/xenstore-read', [path], { env: { ...process.env, XENSTORED_PATH: join(stack.runDir, 'xenstored/socket') } }, (err, out, stderr) =>
      err ? rej(new Error(`xenstore-read ${path}: ${stderr}`)) : res(out.trimEnd()),
    ),
  );
}

/** `xenstore-ls -p DIR`: each node with its permissions, e.g. "state = "1"  . . . (n3,r5)". */
function xsLsPerms(path: string): Promise<string> {
  return new Promise((res, rej) =>
    execFile('/usr/bin/xenstore-ls', ['-p', path], { env: { ...process.env, XENSTORED_PATH: join(stack.runDir, 'xenstored/socket') } }, (err, out, stderr) =>
      err ? rej(new Error(`xenstore-ls ${path}: ${stderr}`)) : res(out),
    ),
  );
}

function writeCfg(name: string, lines: string[]): string {
  const p = join(stack.runDir, `${name}.cfg`);
  writeFileSync(p, [`name = "${name}"`, `kernel = "${REPO}/packages/guests/images/pvh-spin.elf"`, 'memory = 16', ...lines].join('\n') + '\n');
  return p;
}

async function domid(name: string): Promise<number> {
  return Number((await xl('domid', name)).stdout.trim());
}

beforeAll(async () => {
  stack = await TestStack.up('xldev');
  img = join(stack.runDir, 'disk.img');
  writeFileSync(img, Buffer.alloc(1 << 20));
});
afterAll(async () => {
  await stack?.destroy();
});

describe('disks and nics from a config', () => {
  it('xl create writes the vbd and vif directories libxl writes, served by blkback and netback', async () => {
    const cfg = writeCfg('devs', [`disk = [ '${img},raw,xvda,w' ]`, `vif = [ 'mac=00:16:3e:01:02:03,bridge=xenbr0' ]`]);
    const r = await xl('create', '-p', cfg);
    expect(r.code, r.stderr).toBe(0);
    const d = await domid('devs');
    const bb = (await stack.service('blkback')).domid!;
    const nb = (await stack.service('netback')).domid!;

    const fe = `/local/domain/${d}/device/vbd/51712`;
    const be = `/local/domain/${bb}/backend/vbd/${d}/51712`;
    expect(await xsRead(`${fe}/backend`)).toBe(be);
    expect(await xsRead(`${fe}/backend-id`)).toBe(String(bb));
    expect(await xsRead(`${fe}/virtual-device`)).toBe('51712');
    expect(await xsRead(`${be}/params`)).toBe(`raw:${img}`);
    expect(await xsRead(`${be}/mode`)).toBe('w');
    expect(await xsRead(`${be}/dev`)).toBe('xvda');
    expect(await xsRead(`${be}/frontend-id`)).toBe(String(d));
    expect(await xsRead(`${be}/online`)).toBe('1');

    const vfe = `/local/domain/${d}/device/vif/0`;
    const vbe = `/local/domain/${nb}/backend/vif/${d}/0`;
    expect(await xsRead(`${vfe}/mac`)).toBe('00:16:3e:01:02:03');
    expect(await xsRead(`${vbe}/bridge`)).toBe('xenbr0');
    expect(await xsRead(`${vbe}/mac`)).toBe('00:16:3e:01:02:03');
  });

  it("xl block-list and network-list print xl's columns", async () => {
    const d = await domid('devs');
    const bb = (await stack.service('blkback')).domid!;
    const bl = await xl('block-list', 'devs');
    expect(bl.code).toBe(0);
    const [head, row] = bl.stdout.split('\n');
    expect(head).toBe('Vdev  BE  handle state evt-ch ring-ref BE-path                       ');
    expect(row).toMatch(new RegExp(`^51712 ${String(bb).padEnd(3)} ${String(d).padEnd(6)} \\d +-?\\d+ +-?\\d+ +/local/domain/${bb}/backend/vbd/${d}/51712`));
    const nl = await xl('network-list', 'devs');
    expect(nl.stdout.split('\n')[0]).toBe('Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       ');
    expect(nl.stdout.split('\n')[1]).toMatch(/^0 {3}\d+ +00:16:3e:01:02:03 +0 +\d /);
  });

  it('xl top counts the vifs and vbds in NETS and VBDS', async () => {
    const r = await xl('top', '-d', '0.2');
    expect(r.code, r.stderr).toBe(0);
    const row = r.stdout.split('\n').find((l) => l.trimStart().startsWith('devs '))!;
    const cols = row.trim().split(/ +/);
    // NAME STATE CPU(sec) CPU(%) MEM(k) MEM(%) MAXMEM(k) MAXMEM(%) VCPUS NETS NETTX NETRX VBDS ...
    expect(cols[9]).toBe('1');
    expect(cols[12]).toBe('1');
  });

  it('refuses a disk whose image does not exist, naming it, and leaves no domain behind', async () => {
    const cfg = writeCfg('nodisk', [`disk = [ '/nonexistent/x.img,raw,xvda,w' ]`]);
    const r = await xl('create', '-p', cfg);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/nonexistent/x.img');
    expect((await xl('list', 'nodisk')).code).toBe(1);
  });

  it('refuses a bad vdev and a backend domain that does not exist', async () => {
    const bad = await xl('create', '-p', writeCfg('badvdev', [`disk = [ '${img},raw,xvdzzzzzzzzz,w' ]`]));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('xvdzzzzzzzzz');
    const nobe = await xl('create', '-p', writeCfg('nobe', [`vif = [ 'backend=nosuchdom' ]`]));
    expect(nobe.code).toBe(1);
    expect(nobe.stderr).toContain("backend domain 'nosuchdom' does not exist");
    expect((await xl('list', 'nobe')).code).toBe(1);
  });
});

describe('xl list -l', () => {
  it("prints libxl_domain_config JSON: the guest's disks and nics from its config, only c_info for a driver domain", async () => {
    const r = await xl('list', '-l');
    expect(r.code, r.stderr).toBe(0);
    const all = JSON.parse(r.stdout) as Array<{ domid: number; config: Record<string, any> }>;
    const g = all.find((x) => x.config.c_info.name === 'devs')!;
    expect(g.domid).toBe(await domid('devs'));
    expect(g.config.c_info.type).toBe('pvh');
    expect(g.config.b_info.target_memkb).toBe(16 * 1024);
    expect(g.config.disks).toEqual([{ pdev_path: img, vdev: 'xvda', format: 'raw', readwrite: 1 }]);
    expect(g.config.nics[0]).toMatchObject({ devid: 0, mac: '00:16:3e:01:02:03', bridge: 'xenbr0' });
    const nb = all.find((x) => x.config.c_info.name === 'netback')!;
    expect(Object.keys(nb.config)).toEqual(['c_info']);
    expect(r.stdout).toMatch(/^\[\n {4}\{\n {8}"domid"/);
  });
});

describe('hotplug with xl', () => {
  it('block-attach adds a second disk; block-detach -f removes both directories', async () => {
    const d = await domid('devs');
    const a = await xl('block-attach', 'devs', `${img},raw,xvdb,r`);
    expect(a.code, a.stderr).toBe(0);
    const bl = await xl('block-list', 'devs');
    expect(bl.stdout).toContain('51728 ');
    const det = await xl('block-detach', '-f', 'devs', 'xvdb');
    expect(det.code, det.stderr).toBe(0);
    expect((await xl('block-list', 'devs')).stdout).not.toContain('51728 ');
    await expect(xsRead(`/local/domain/${d}/device/vbd/51728/backend`)).rejects.toThrow();
  });

  it('network-attach picks the next devid and a 00:16:3e MAC; detach of an unknown device says so', async () => {
    const a = await xl('network-attach', 'devs', 'bridge=xenbr0');
    expect(a.code, a.stderr).toBe(0);
    const rows = (await xl('network-list', 'devs')).stdout.split('\n').filter((l) => /^\d/.test(l));
    expect(rows).toHaveLength(2);
    expect(rows[1]).toMatch(/^1 {3}\d+ +00:16:3e:[0-7][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}/);
    const det = await xl('network-detach', 'devs', '7');
    expect(det.code).toBe(1);
    expect(det.stderr).toBe('Unknown device 7.\n');
    const byMac = await xl('block-detach', 'devs', 'xvdq');
    expect(byMac.code).toBe(1);
    expect(byMac.stderr).toBe('Error: Device xvdq not connected.\n');
  });
});

describe('removing the last device of a kind', () => {
  it('leaves no empty directory behind, front or back (libxl__xs_path_cleanup)', async () => {
    expect((await xl('create', writeCfg('lone', ['vif = [ "bridge=xenbr0" ]']))).code).toBe(0);
    const d = await domid('lone');
    const be = await xsRead(`/local/domain/${d}/device/vif/0/backend`);
    const det = await xl('network-detach', 'lone', '0');
    expect(det.code, det.stderr).toBe(0);
    await expect(xsRead(be)).rejects.toThrow();
    await expect(xsRead(be.replace(/\/\d+$/, ''))).rejects.toThrow(); // backend/vif/<domid>
    await expect(xsRead(`/local/domain/${d}/device/vif`)).rejects.toThrow();
    expect(await xsRead(`/local/domain/${d}/name`)).toBe('lone');
    expect((await xl('destroy', 'lone')).code).toBe(0);
  });
});

describe('a disk attached to a running guest', () => {
  it("xl block-attach: the PV kernel's blkfront sees the new disk and connects it (block-list state 4)", async () => {
    const cfg = join(stack.runDir, 'hot.cfg');
    writeFileSync(cfg, `name = "hot"\nkernel = "${REPO}/packages/guests/images/pvkernel.elf"\nmemory = 32\ncmdline = "shell"\n`);
    expect((await xl('create', cfg)).code).toBe(0);
    const log = () => (existsSync(runDirLayout(stack.runDir).consoleLog('hot')) ? readFileSync(runDirLayout(stack.runDir).consoleLog('hot'), 'utf8') : '');
    const until = async (what: string, f: () => boolean | Promise<boolean>) => {
      const deadline = Date.now() + 30_000;
      while (!(await f())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; console:\n${log()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await until('the shell', () => log().includes('pvkernel> '));
    const a = await xl('block-attach', 'hot', `${img},raw,xvdb,w`);
    expect(a.code, a.stderr).toBe(0);
    await until('blkfront to connect xvdb', () => /blkfront xvdb: 2048 sectors of 512 bytes/.test(log()));
    expect(log()).toContain('blkfront: new virtual disk 51728');
    await until('block-list to show it connected', async () => /^51728 +\d+ +\d+ +4 /m.test((await xl('block-list', 'hot')).stdout));
    expect((await xl('destroy', 'hot')).code).toBe(0);
  }, 90_000);
});

describe('devices follow a restarted driver domain', () => {
  it('after blkback is killed, its devices are served by the new blkback domain and the frontend points there', async () => {
    const d = await domid('devs');
    const before = (await stack.service('blkback')).domid!;
    expect((await stack.run('kill', 'blkback')).code).toBe(0);
    const after = (await stack.waitFor('blkback', (s) => s.state === 'ready' && s.domid !== before, 10_000)).domid!;
    const fe = `/local/domain/${d}/device/vbd/51712`;
    const deadline = Date.now() + 5000;
    while ((await xsRead(`${fe}/backend-id`)) !== String(after) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await xsRead(`${fe}/backend-id`)).toBe(String(after));
    expect(await xsRead(`${fe}/backend`)).toBe(`/local/domain/${after}/backend/vbd/${d}/51712`);
    expect(await xsRead(`/local/domain/${after}/backend/vbd/${d}/51712/params`)).toBe(`raw:${img}`);
    // The new backend may read the frontend's directory and what is in it; the dead one no longer is named.
    const perms = await xsLsPerms(fe);
    expect(perms).toContain(`r${after}`);
    expect(perms).not.toContain(`r${before})`);
    // The netback's vif did not move.
    expect(await xsRead(`/local/domain/${d}/device/vif/0/backend-id`)).toBe(String((await stack.service('netback')).domid));
  });

  it('xl destroy removes the guest\'s device directories from the backends', async () => {
    const d = await domid('devs');
    const bb = (await stack.service('blkback')).domid!;
    const nb = (await stack.service('netback')).domid!;
    expect((await xl('destroy', 'devs')).code).toBe(0);
    await expect(xsRead(`/local/domain/${bb}/backend/vbd/${d}/51712/params`)).rejects.toThrow();
    await expect(xsRead(`/local/domain/${nb}/backend/vif/${d}/0/mac`)).rejects.toThrow();
  });
});
