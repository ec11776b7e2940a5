/**
 * Issue #10 for an HVM guest: its disk is a virtio-blk device in its stub
 * domain, reaching blkback through the stub domain's blkfront.  When
 * blkback is killed in the middle of a U-Boot `load`, the stub domain's
 * blkfront reconnects to the new blkback and issues again what had no
 * answer; U-Boot, polling its virtqueue, just waits — and the file it loads
 * has the host's crc32.
 */
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { callSupervisor } from '@xenbox/dom0';
import { TestStack } from './helpers/stack.js';
import { UBOOT, fatImage, haveCommand, ubootPrompt, until, type UbootConsole } from './helpers/uboot.js';

const ready = existsSync(UBOOT) && haveCommand('mkfs.vfat') && haveCommand('mcopy');
/** 12 MiB of pseudo-random bytes: a load long enough (seconds) for a kill to land inside it. */
const BIG = Buffer.from(Array.from({ length: 12 << 20 }, (_, i) => (Math.imul(i ^ 0x5bd1e995, 2654435761) >>> 11) & 0xff));
let stack: TestStack;
let con: UbootConsole | null = null;

beforeAll(async () => {
  if (!ready) return;
  stack = await TestStack.up('hvm-restart');
}, 60_000);
afterAll(async () => {
  con?.close();
  await stack?.destroy();
}, 60_000);

describe.skipIf(!ready)('an HVM guest whose blkback dies under it (skipped without u-boot-qemu, dosfstools, mtools)', () => {
  it('finishes a U-Boot load started before the kill, with the host\'s crc32: the stub domain\'s blkfront re-issued what was in flight', async () => {
    const disk = join(stack.runDir, 'disk.img');
    fatImage(disk, 16, 'XENBOXHD', { 'big.bin': BIG }, stack.runDir);
    const cfg = join(stack.runDir, 'ur.cfg');
    writeFileSync(cfg, ['name = "ur"', 'builder = "hvm"', 'memory = 128', 'on_crash = "destroy"', `disk = [ "${disk},raw,hda,rw" ]`].join('\n') + '\n');
    const r = await stack.xl('create', cfg);
    expect(r.code, r.stderr).toBe(0);
    con = await ubootPrompt(stack.runDir, 'ur');
    await con.run('virtio scan');
    const before = await stack.service('blkback');
    // Start the load (seconds of virtio-blk reads), and kill blkback once it is under way.
    const from = con.out().length;
    con.type(`load virtio 0 0x84000000 big.bin\r`);
    await new Promise((r) => setTimeout(r, 300));
    await callSupervisor(stack.runDir, 'kill', { name: 'blkback' });
    const killedAt = con.out().length;
    await until('U-Boot to finish the load', () => /\r?\n=> $/.test(con!.out().slice(from)), 120_000);
    const load = con.out().slice(from);
    // The kill landed inside the load: U-Boot had not printed its result yet.
    expect(con.out().slice(from, killedAt)).not.toContain('bytes read');
    console.info(`U-Boot across a blkback restart: ${/\d+ bytes read in \d+ ms[^\r\n]*/.exec(load)?.[0] ?? load}`);
    expect(load).toContain(`${BIG.length} bytes read`);
    const crc = await con.run(`crc32 0x84000000 ${BIG.length.toString(16)}`);
    expect(crc).toContain(`==> ${crc32(BIG).toString(16).padStart(8, '0')}`);
    // It was a restart under the guest, not before or after it: blkback is a new domain, and the supervisor's
    // record of that restart has the stub domain's vbd moved, reconnected and answered.
    const after = await stack.waitFor('blkback', (s) => s.state === 'ready' && s.pid !== before.pid, 20_000);
    const rec = after.restartMetrics[after.restartMetrics.length - 1]!;
    console.info(`restart record: ${JSON.stringify(rec)}`);
    expect(rec.devices).toBeGreaterThanOrEqual(1);
    expect(rec.connectedMs).not.toBeNull();
    expect(rec.firstIoMs).not.toBeNull();
  }, 180_000);
});
