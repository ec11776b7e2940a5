/**
 * Issue #9 item 7: the HVM configuration xenbox was specified from
 * (seed-configs/hvm-minimal.cfg, a copy in packages/dom0/test/xlcfg/fixtures: builder = "hvm", a disk
 * and a read-only CD-ROM, a vif on xenbr0 with a fixed MAC, boot = "cd",
 * vnc keys, device_model = qemu-dm, kernel = hvmloader, on_crash/on_reboot)
 * creates a working guest once its two paths point at real files — and only
 * those two lines change.  The legacy keys map onto xenbox's own device model
 * and firmware, with a note.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';
import { TestStack } from './helpers/stack.js';
import { UBOOT, fatImage, haveCommand, ubootPrompt, type UbootConsole } from './helpers/uboot.js';

/** The seed configs, copied into the repo as the parser's fixtures. */
const SEED = resolve(REPO, 'packages/dom0/test/xlcfg/fixtures/hvm-minimal.cfg');
const ready = existsSync(UBOOT) && haveCommand('mkfs.vfat') && haveCommand('mcopy');
let stack: TestStack;
let con: UbootConsole | null = null;

beforeAll(async () => {
  if (!ready) return;
  stack = await TestStack.up('hvm-seed');
}, 60_000);
afterAll(async () => {
  con?.close();
  await stack?.destroy();
}, 60_000);

describe.skipIf(!ready)('the seed HVM config (skipped without u-boot-qemu, dosfstools, mtools)', () => {
  it('creates a guest whose U-Boot sees the disk and the CD-ROM and whose NIC has the configured MAC', async () => {
    const disk = join(stack.runDir, 'my_hvm_disk.img');
    const iso = join(stack.runDir, 'install.iso');
    fatImage(disk, 4, 'HVMDISK', { 'disk.txt': 'the writable disk\n' }, stack.runDir);
    fatImage(iso, 2, 'HVMISO', { 'iso.txt': 'the install media\n' }, stack.runDir);
    const seed = readFileSync(SEED, 'utf8');
    const cfgText = seed.replace('/var/lib/xen/images/my_hvm_disk.img', disk).replace('/var/lib/xen/iso/ubuntu-22.04.iso', iso);
    expect(cfgText.split('\n').filter((l, i) => l !== seed.split('\n')[i])).toHaveLength(2);
    const cfg = join(stack.runDir, 'hvm-minimal.cfg');
    writeFileSync(cfg, cfgText);
    const r = await stack.xl('create', cfg);
    expect(r.code, r.stderr).toBe(0);
    // The legacy keys say what they became.
    expect(r.stderr).toMatch(/device_model/);
    expect(r.stderr).toMatch(/hvmloader/);
    con = await ubootPrompt(stack.runDir, 'my_hvm_domU', 90_000);
    await con.run('virtio scan');
    // boot = "cd": the hard disk first, then the CD-ROM (xl.cfg(5)).
    expect(await con.run('ls virtio 0 /')).toMatch(/disk\.txt/);
    expect(await con.run('ls virtio 1 /')).toMatch(/iso\.txt/);
    expect(await con.run('printenv ethaddr')).toContain('ethaddr=00:16:3e:aa:bb:cc');
    const list = await stack.xl('list');
    expect(list.stdout).toMatch(/^my_hvm_domU +\d+ +2048 +2 /m);
    expect((await stack.xl('destroy', 'my_hvm_domU')).code).toBe(0);
  }, 180_000);
});
