/**
 * qcow2 images over backing files made by qemu-img (`create -b base -F fmt`):
 * unallocated clusters read from the backing file, partial writes copy from it,
 * discard hides it (zero clusters), the chain is followed, and a probed image
 * may not name a backing file.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { openBlockImage } from '../dist/image/block-image.js';
import { firstDiff, messageOf, patch, prng, qemuCheck, qemuConvertToRaw, qemuImg, tempDir, u64 } from './image-helpers.js';

const tmp = tempDir('qcow2-backing');
afterAll(() => tmp.remove());

const MiB = 1 << 20;
let n = 0;

/** A base image full of a known pattern with holes, as raw or qcow2. */
function base(format: 'raw' | 'qcow2', size = 4 * MiB): { path: string; bytes: Buffer } {
  const bytes = Buffer.alloc(size);
  const r = prng(1000 + n);
  for (let i = 0; i < 24; i++) r.bytes(4096 + r.int(60000)).copy(bytes, r.int(size - 70000));
  const raw = tmp.file(`base${n++}.raw`);
  writeFileSync(raw, bytes);
  if (format === 'raw') return { path: raw, bytes };
  const path = tmp.file(`base${n++}.qcow2`);
  qemuImg('convert', '-f', 'raw', '-O', 'qcow2', raw, path);
  return { path, bytes };
}

/** An overlay over `backing`, named relative to the overlay's directory (as qemu-img stores it). */
function overlay(backing: string, fmt: 'raw' | 'qcow2', opts = 'compat=1.1', size?: string): string {
  const path = tmp.file(`over${n++}.qcow2`);
  qemuImg('create', '-q', '-f', 'qcow2', '-o', opts, '-b', basename(backing), '-F', fmt, path, ...(size ? [size] : []));
  return path;
}

function expectClean(path: string): void {
  const c = qemuCheck(path);
  expect({ exit: c.exitCode, errors: c.checkErrors, corruptions: c.corruptions, leaks: c.leaks }, c.raw).toEqual({ exit: 0, errors: 0, corruptions: 0, leaks: 0 });
}

describe('qcow2 over a backing file', () => {
  it.each([
    ['a qcow2 base, v3 overlay', 'qcow2', 'compat=1.1'],
    ['a raw base, v3 overlay with 4 KiB clusters', 'raw', 'cluster_size=4096'],
    ['a qcow2 base, v2 overlay', 'qcow2', 'compat=0.10'],
  ] as const)('%s: reads the base, partial writes copy from it, discard shows zeros; check clean, convert exact', async (_n, fmt, opts) => {
    const b = base(fmt);
    const path = overlay(b.path, fmt, opts);
    const img = await openBlockImage(path, { format: 'qcow2' });
    expect(img.size).toBe(b.bytes.length);
    const shadow = Buffer.from(b.bytes);
    expect(firstDiff(await img.read(0, img.size), shadow)).toBe(-1);
    const r = prng(9);
    for (let i = 0; i < 40; i++) {
      const len = (1 + r.int(100)) * 512;
      const off = r.int((img.size - len) / 512) * 512;
      const data = r.bytes(len);
      await img.write(off, data); // partial clusters keep the base's bytes around them
      data.copy(shadow, off);
    }
    for (const [off, len] of [
      [0, 65536 * 2],
      [MiB + 512, 70000 - (70000 % 512)],
      [3 * MiB, 4096],
    ] as const) {
      await img.discard(off, len);
      shadow.fill(0, off, off + len);
    }
    expect(firstDiff(await img.read(0, img.size), shadow)).toBe(-1);
    await img.close();
    expectClean(path);
    expect(firstDiff(qemuConvertToRaw(path, `${path}.raw`), shadow)).toBe(-1);
    // The base is untouched.
    if (fmt === 'raw') expect(readFileSync(b.path).equals(b.bytes)).toBe(true);
    else expectClean(b.path);
  });

  it.each([
    ['v3', 'compat=1.1'],
    ['v2', 'compat=0.10'],
  ])('overlapping writes and discards over a base, 32 in flight (%s overlay): clean, and qemu-img reads what we read', async (_n, opts) => {
    const b = base('qcow2', 2 * MiB);
    const path = overlay(b.path, 'qcow2', `${opts},cluster_size=4096`);
    const img = await openBlockImage(path, { format: 'qcow2' });
    const r = prng(31);
    let next = 0;
    const worker = async () => {
      while (next++ < 300) {
        const len = (1 + r.int(64)) * 512;
        const off = r.int((img.size - len) / 512) * 512;
        if (r.int(3) === 0) await img.discard(off, len);
        else await img.write(off, r.bytes(len));
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const ours = Buffer.from(await img.read(0, img.size));
    await img.close();
    expectClean(path);
    expect(firstDiff(qemuConvertToRaw(path, `${path}.raw`), ours)).toBe(-1);
  });

  it('an overlay larger than its base reads zeros past the base', async () => {
    const b = base('raw', MiB);
    const path = overlay(b.path, 'raw', 'compat=1.1', '3M');
    const img = await openBlockImage(path, { format: 'qcow2' });
    expect(img.size).toBe(3 * MiB);
    const want = Buffer.concat([b.bytes, Buffer.alloc(2 * MiB)]);
    expect(firstDiff(await img.read(0, img.size), want)).toBe(-1);
    await img.write(MiB - 1024, Buffer.alloc(2048, 0x77)); // straddles the base's end
    want.fill(0x77, MiB - 1024, MiB + 1024);
    expect(firstDiff(await img.read(0, img.size), want)).toBe(-1);
    await img.close();
    expectClean(path);
  });

  it('follows a chain of two overlays', async () => {
    const b = base('qcow2');
    const mid = overlay(b.path, 'qcow2');
    const m = await openBlockImage(mid, { format: 'qcow2' });
    await m.write(65536, Buffer.alloc(65536, 0x11));
    await m.close();
    const top = overlay(mid, 'qcow2');
    const img = await openBlockImage(top, { format: 'qcow2', readOnly: true });
    const want = Buffer.from(b.bytes);
    want.fill(0x11, 65536, 2 * 65536);
    expect(firstDiff(await img.read(0, img.size), want)).toBe(-1);
    await img.close();
  });

  it('a probed image may not name a backing file (a guest-written header must not reach host files)', async () => {
    const b = base('raw', MiB);
    const path = overlay(b.path, 'raw');
    expect(await messageOf(openBlockImage(path, {}))).toMatch(/^EOPNOTSUPP: .*backing file .* format was probed/);
  });

  it('a missing backing file is ENOENT naming it; a self-referencing chain is refused', async () => {
    const b = base('raw', MiB);
    const path = overlay(b.path, 'raw');
    const { rmSync } = await import('node:fs');
    rmSync(b.path);
    const msg = await messageOf(openBlockImage(path, { format: 'qcow2' }));
    expect(msg).toMatch(/^ENOENT: /);
    expect(msg).toContain(b.path);
    // An image that is its own backing file (format qcow2 named in the extension).
    const loop = tmp.file(`loop${n++}.qcow2`);
    qemuImg('create', '-q', '-f', 'qcow2', loop, '1M');
    qemuImg('rebase', '-u', '-f', 'qcow2', '-b', basename(loop), '-F', 'qcow2', loop);
    expect(await messageOf(openBlockImage(loop, { format: 'qcow2' }))).toMatch(/^EINVAL: .*deeper than 16/);
  });

  it('a backing file name that runs out of the first cluster is EINVAL', async () => {
    const b = base('raw', MiB);
    const path = overlay(b.path, 'raw');
    patch(path, 8, u64(65530n)); // backing_file_offset: the name would cross into the second cluster
    expect(await messageOf(openBlockImage(path, { format: 'qcow2' }))).toMatch(/^EINVAL: .*backing file name/);
  });
});
