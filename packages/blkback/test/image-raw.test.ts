/**
 * Raw images through openBlockImage: the file is the disk.  Reads, writes,
 * flush and discard against a shadow copy of the file; bounds and read-only
 * refusals; format probing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { openBlockImage } from '../dist/image/block-image.js';
import { errnoOf, firstDiff, messageOf, prng, tempDir } from './image-helpers.js';

const tmp = tempDir('raw');
afterAll(() => tmp.remove());

const MiB = 1 << 20;
let n = 0;
function rawFile(bytes: Buffer): string {
  const p = tmp.file(`disk${n++}.img`);
  writeFileSync(p, bytes);
  return p;
}

describe('raw images', () => {
  it('probes as raw, reads what is in the file and writes through to it', async () => {
    const r = prng(1);
    const shadow = r.bytes(4 * MiB);
    const path = rawFile(shadow);
    const img = await openBlockImage(path, {});
    expect([img.format, img.size, img.readOnly, img.path]).toEqual(['raw', 4 * MiB, false, path]);
    expect(firstDiff(await img.read(0, img.size), shadow)).toBe(-1);
    const writes = [];
    for (let i = 0; i < 64; i++) {
      const len = (1 + r.int(64)) * 512;
      const off = i * 65536 + r.int(64) * 512; // distinct 64 KiB slots: concurrent, never overlapping
      const data = r.bytes(len);
      data.copy(shadow, off);
      writes.push(img.write(off, data));
    }
    await Promise.all(writes);
    await img.write(img.size - 512, Buffer.alloc(512, 0xee));
    shadow.fill(0xee, img.size - 512);
    await img.flush();
    expect(firstDiff(await img.read(0, img.size), shadow)).toBe(-1);
    await img.close();
    expect(firstDiff(readFileSync(path), shadow)).toBe(-1);
  });

  it('discard makes the range read as zeros and keeps the file size', async () => {
    const r = prng(2);
    const shadow = r.bytes(2 * MiB);
    const path = rawFile(shadow);
    const img = await openBlockImage(path, { format: 'raw' });
    for (const [off, len] of [
      [512, 512],
      [65536, 3 * MiB / 2],
      [2 * MiB - 1024, 1024],
    ] as const) {
      await img.discard(off, len);
      shadow.fill(0, off, off + len);
    }
    await img.flush();
    expect(firstDiff(await img.read(0, img.size), shadow)).toBe(-1);
    await img.close();
    expect(statSync(path).size).toBe(2 * MiB);
    expect(firstDiff(readFileSync(path), shadow)).toBe(-1);
  });

  it('a large discard punches a hole: the host gets the blocks back, the size stays', async () => {
    const r = prng(22);
    const shadow = r.bytes(8 * MiB);
    const path = rawFile(shadow);
    const img = await openBlockImage(path, {});
    await img.flush();
    const usedBefore = statSync(path).blocks * 512;
    await img.discard(2 * MiB, 4 * MiB);
    shadow.fill(0, 2 * MiB, 6 * MiB);
    expect(firstDiff(await img.read(0, img.size), shadow)).toBe(-1);
    await img.close();
    expect(statSync(path).size).toBe(8 * MiB);
    expect(usedBefore - statSync(path).blocks * 512).toBeGreaterThanOrEqual(3 * MiB);
    expect(firstDiff(readFileSync(path), shadow)).toBe(-1);
  });

  it('refuses unaligned and out-of-range requests with EINVAL and leaves the file alone', async () => {
    const before = prng(3).bytes(MiB);
    const path = rawFile(before);
    const img = await openBlockImage(path, {});
    const bad: Array<() => Promise<unknown>> = [
      () => img.read(511, 512),
      () => img.read(0, 513),
      () => img.read(MiB, 512),
      () => img.read(MiB - 512, 1024),
      () => img.read(-512, 512),
      () => img.read(0.5, 512),
      () => img.write(MiB, Buffer.alloc(512)),
      () => img.write(MiB - 512, Buffer.alloc(1024)),
      () => img.write(100, Buffer.alloc(512)),
      () => img.write(0, Buffer.alloc(511)),
      () => img.discard(MiB - 512, 1024),
      () => img.discard(0, 100),
      () => img.write(2 ** 53, Buffer.alloc(512)),
    ];
    for (const f of bad) expect(await errnoOf(f())).toBe('EINVAL');
    await img.close();
    expect(statSync(path).size).toBe(MiB);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('a read-only image refuses write and discard with EROFS and still reads', async () => {
    const data = prng(4).bytes(64 * 1024);
    const path = rawFile(data);
    const img = await openBlockImage(path, { readOnly: true });
    expect(img.readOnly).toBe(true);
    expect(await errnoOf(img.write(0, Buffer.alloc(512)))).toBe('EROFS');
    expect(await errnoOf(img.discard(0, 512))).toBe('EROFS');
    expect(Buffer.from(await img.read(512, 1024)).equals(data.subarray(512, 1536))).toBe(true);
    await img.flush();
    await img.close();
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('the virtual size is whole sectors; a trailing partial sector is not addressable', async () => {
    const path = rawFile(Buffer.alloc(4096 + 100, 7));
    const img = await openBlockImage(path, {});
    expect(img.size).toBe(4096);
    expect(await errnoOf(img.read(4096, 512))).toBe('EINVAL');
    await img.close();
  });

  it('a missing file is ENOENT naming the path; format=qcow2 on a raw file is EINVAL', async () => {
    const missing = tmp.file('missing.img');
    const msg = await messageOf(openBlockImage(missing, {}));
    expect(msg).toMatch(/^ENOENT: /);
    expect(msg).toContain(missing);
    const path = rawFile(Buffer.alloc(MiB));
    expect(await messageOf(openBlockImage(path, { format: 'qcow2' }))).toMatch(/^EINVAL: .*not a qcow2 image/);
    expect(await errnoOf(openBlockImage(path, { format: 'vmdk' as never }))).toBe('EINVAL');
  });

  it('a directory or a device is not an image: EISDIR, or EINVAL naming it', async () => {
    expect(await errnoOf(openBlockImage(tmp.dir, { format: 'raw' }))).toBe('EISDIR');
    expect(await errnoOf(openBlockImage(tmp.dir, {}))).toBe('EISDIR');
    expect(await messageOf(openBlockImage('/dev/null', { format: 'raw' }))).toMatch(/^EINVAL: \/dev\/null: not a regular file/);
  });

  it('a closed image refuses further I/O with EBADF', async () => {
    const img = await openBlockImage(rawFile(Buffer.alloc(4096)), {});
    await img.close();
    expect(await errnoOf(img.read(0, 512))).toBe('EBADF');
    await img.close(); // idempotent
  });
});
