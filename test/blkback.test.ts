/**
 * blkback as a real driver domain: a stack with one blkback process, front
 * ends in process domains (TypeScript blkfront) using vbds the toolstack's
 * own addDevice wrote, and the image files checked from outside.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VDISK_CDROM, VDISK_READONLY, XenError, XenbusState } from '@xenbox/abi';
import { Blkfront } from '@xenbox/libxen';
import { BlkStack } from './helpers/blk-stack.js';

const MiB = 1024 * 1024;
let s: BlkStack;
let dir: string;

beforeAll(async () => {
  s = await BlkStack.up('blk');
  dir = mkdtempSync('/tmp/xb-blkimg-');
}, 60_000);
afterAll(async () => {
  await s?.down();
  rmSync(dir, { recursive: true, force: true });
});

/** A deterministic byte pattern that differs per sector, so a misplaced sector shows. */
function pattern(bytes: number, seed: number): Uint8Array {
  const b = new Uint8Array(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function front(name: string, file: string, opts: { params?: string; mode?: 'w' | 'r'; deviceType?: 'disk' | 'cdrom'; discard?: boolean } = {}) {
  const f = await s.frontDomain(name);
  const devid = 51712;
  await s.addVbd({ frontend: f.domid, devid, params: opts.params ?? `raw:${file}`, mode: opts.mode, deviceType: opts.deviceType, discard: opts.discard });
  const dbg: any = { child: () => dbg, info: (...a: unknown[]) => process.env.XB_DBG && console.error('INFO', JSON.stringify(a)), warn: (...a: unknown[]) => process.env.XB_DBG && console.error('WARN', JSON.stringify(a)) };
  const blk = await Blkfront.connect({ hv: f.hv, xs: f.xs, domid: f.domid, devid, log: dbg });
  return { f, blk, devid };
}

describe('blkback serving a raw image', () => {
  it('writes a pattern through blkfront -> blkback that is on disk byte for byte, and reads it back', async () => {
    const file = join(dir, 'disk.raw');
    writeFileSync(file, new Uint8Array(8 * MiB));
    const { blk, f, devid } = await front('fe-raw', file);
    expect(blk.info.sectors).toBe((8 * MiB) / 512);
    expect(blk.info.readOnly).toBe(false);
    expect(await s.backendState(f.domid, devid)).toBe(XenbusState.Connected);
    // Direct (<= 11 pages), indirect (64 KiB and 1 MiB), sub-page and unaligned writes, many in flight.
    const writes: Array<[number, Uint8Array]> = [
      [0, pattern(4096, 1)],
      [9, pattern(512, 2)],
      [100, pattern(44 * 1024, 3)],
      [2048, pattern(64 * 1024, 4)],
      [4096, pattern(1 * MiB, 5)],
    ];
    for (let i = 0; i < 40; i++) writes.push([8192 + i * 128, pattern(64 * 1024, 100 + i)]);
    await Promise.all(writes.map(([sector, data]) => blk.write(sector, data)));
    await blk.flush();
    const disk = readFileSync(file);
    for (const [sector, data] of writes) expect(Buffer.compare(disk.subarray(sector * 512, sector * 512 + data.length), data), `sector ${sector}`).toBe(0);
    const expected = new Uint8Array(8 * MiB);
    for (const [sector, data] of writes) expected.set(data, sector * 512);
    expect(Buffer.compare(disk, expected)).toBe(0);
    const back = await Promise.all(writes.map(([sector, data]) => blk.read(sector, data.length / 512)));
    back.forEach((b, i) => expect(Buffer.compare(b, writes[i]![1]), `read ${i}`).toBe(0));
    expect(Buffer.compare(await blk.read(0, (8 * MiB) / 512), expected)).toBe(0);
    await blk.close();
  }, 60_000);

  it('discard reads back zeros; a write past the end fails with EIO and changes nothing', async () => {
    const file = join(dir, 'discard.raw');
    writeFileSync(file, pattern(2 * MiB, 9));
    const { blk } = await front('fe-discard', file);
    expect(blk.info.discard).toBe(true);
    await blk.discard(8, 16);
    const disk = readFileSync(file);
    expect(disk.subarray(8 * 512, 24 * 512).every((b) => b === 0)).toBe(true);
    expect(Buffer.compare(disk.subarray(0, 8 * 512), pattern(2 * MiB, 9).subarray(0, 8 * 512))).toBe(0);
    expect((await blk.read(8, 16)).every((b) => b === 0)).toBe(true);
    const before = readFileSync(file);
    await expect(blk.write((2 * MiB) / 512 - 4, new Uint8Array(4096))).rejects.toMatchObject({ errno: 'EIO' });
    expect(Buffer.compare(readFileSync(file), before)).toBe(0);
    await blk.close();
  }, 30_000);
});

describe('read-only vbds', () => {
  it('mode=r refuses writes, flush and discard with BLKIF_RSP_ERROR / EOPNOTSUPP and leaves the image unchanged; reads work', async () => {
    const file = join(dir, 'ro.raw');
    const content = pattern(1 * MiB, 21);
    writeFileSync(file, content);
    const { blk } = await front('fe-ro', file, { mode: 'r' });
    expect(blk.info.readOnly).toBe(true);
    expect(blk.info.info & VDISK_READONLY).toBe(VDISK_READONLY);
    expect(blk.info.flush).toBe(false);
    expect(blk.info.discard).toBe(false);
    const err = await blk.write(0, new Uint8Array(4096)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XenError);
    expect((err as XenError).message).toMatch(/BLKIF_RSP_ERROR/);
    await expect(blk.write(100, new Uint8Array(64 * 1024))).rejects.toMatchObject({ errno: 'EIO' });
    await expect(blk.discard(0, 8)).rejects.toMatchObject({ errno: 'EOPNOTSUPP' });
    expect(Buffer.compare(await blk.read(0, 2048), content)).toBe(0);
    expect(Buffer.compare(readFileSync(file), content)).toBe(0);
    await blk.close();
  }, 30_000);

  it('device-type=cdrom is read-only even with mode=w, and says so in info', async () => {
    const file = join(dir, 'cd.iso');
    const content = pattern(1 * MiB, 33);
    writeFileSync(file, content);
    const { blk } = await front('fe-cd', file, { mode: 'w', deviceType: 'cdrom' });
    expect(blk.info.cdrom).toBe(true);
    expect(blk.info.info & (VDISK_CDROM | VDISK_READONLY)).toBe(VDISK_CDROM | VDISK_READONLY);
    await expect(blk.write(0, new Uint8Array(512))).rejects.toMatchObject({ errno: 'EIO' });
    expect(Buffer.compare(readFileSync(file), content)).toBe(0);
    expect(Buffer.compare(await blk.read(16, 8), content.subarray(16 * 512, 24 * 512))).toBe(0);
    await blk.close();
  }, 30_000);
});

describe('the xenbus state machine', () => {
  it('a front end that closes and comes back gets InitWait -> Connected again; online=0 closes the backend', async () => {
    const file = join(dir, 'again.raw');
    writeFileSync(file, new Uint8Array(1 * MiB));
    const { f, blk, devid } = await front('fe-again', file);
    await blk.write(0, pattern(4096, 5));
    await blk.close();
    await waitFor(async () => (await s.backendState(f.domid, devid)) === XenbusState.Closed);
    await f.xs.write(`/local/domain/${f.domid}/device/vbd/${devid}/state`, String(XenbusState.Initialising));
    const again = await Blkfront.connect({ hv: f.hv, xs: f.xs, domid: f.domid, devid });
    expect(Buffer.compare(await again.read(0, 8), pattern(4096, 5))).toBe(0);
    const be = `/local/domain/${await s.blkbackDomid()}/backend/vbd/${f.domid}/${devid}`;
    await s.xs.write(`${be}/online`, '0');
    await waitFor(async () => (await s.backendState(f.domid, devid)) === XenbusState.Closed);
    await again.close();
  }, 30_000);
});

describe('blkfront reconnects on the same backend path', () => {
  it('completes what was in flight when its backend closes and comes back to InitWait, re-issuing what had no answer', async () => {
    const file = join(dir, 'bounce.raw');
    writeFileSync(file, new Uint8Array(4 * MiB));
    const { blk, f, devid } = await front('fe-bounce', file);
    const be = `/local/domain/${await s.blkbackDomid()}/backend/vbd/${f.domid}/${devid}`;
    const pid = s.blkbackPid();
    // Freeze blkback with 32 writes on the ring and the toolstack-side close (state=Closing) pending.
    process.kill(pid, 'SIGSTOP');
    const writes = Array.from({ length: 32 }, (_, i) => [i * 128, pattern(64 * 1024, 500 + i)] as const);
    const done = writes.map(([sector, data]) => blk.write(sector, data));
    await waitFor(async () => blk.inFlight === 32 && blk.raw.ring.reqProdPvt - blk.raw.ring.rspCons === 32);
    await s.xs.write(`${be}/state`, String(XenbusState.Closing));
    process.kill(pid, 'SIGCONT');
    // Woken, blkback may serve the ring before it sees the close, or close first: either way every
    // write completes (served, or re-issued on the new ring) and the front end ends up reconnected.
    await Promise.all(done);
    await waitFor(async () => blk.reconnects === 1 && blk.connected);
    expect(blk.reissued).toBeLessThanOrEqual(32);
    expect(await s.backendState(f.domid, devid)).toBe(XenbusState.Connected);
    await blk.flush();
    const expected = new Uint8Array(4 * MiB);
    for (const [sector, data] of writes) expected.set(data, sector * 512);
    expect(Buffer.compare(readFileSync(file), expected)).toBe(0);
    expect(Buffer.compare(await blk.read(0, 8192), expected)).toBe(0);
    await blk.close();
  }, 30_000);
});

describe('qcow2', () => {
  it('a qcow2 image made by qemu-img, written through blkback, passes qemu-img check and converts to exactly the written data', async () => {
    const file = join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '4M']);
    const { blk } = await front('fe-qcow2', file, { params: `qcow2:${file}` });
    expect(blk.info.sectors).toBe((4 * MiB) / 512);
    const expected = new Uint8Array(4 * MiB);
    const writes: Array<[number, Uint8Array]> = [
      [0, pattern(64 * 1024, 1)],
      [200, pattern(4096, 2)],
      [3000, pattern(512 * 1024, 3)],
      [8191, pattern(512, 4)],
    ];
    await Promise.all(writes.map(([sector, data]) => blk.write(sector, data)));
    for (const [sector, data] of writes) expected.set(data, sector * 512);
    await blk.flush();
    expect(Buffer.compare(await blk.read(0, 8192), expected)).toBe(0);
    await blk.close();
    execFileSync('qemu-img', ['check', '-q', file]);
    const raw = join(dir, 'converted.raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', file, raw]);
    expect(Buffer.compare(readFileSync(raw), expected)).toBe(0);
  }, 30_000);
});

async function waitFor(pred: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
