/**
 * qcow2 images that must not open (or must not be written): hostile and
 * unsupported headers and metadata pointers, each a clean XenError naming the
 * file and the problem, never a crash or a write in the wrong place.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { XenError } from '@xenbox/abi';
import { openBlockImage } from '../dist/image/block-image.js';
import { errnoOf, firstDiff, messageOf, patch, prng, qemuImg, readAt, tempDir, u32, u64 } from './image-helpers.js';

const tmp = tempDir('qcow2-hostile');
afterAll(() => tmp.remove());

let n = 0;
function create(size: string): string {
  const p = tmp.file(`img${n++}.qcow2`);
  qemuImg('create', '-q', '-f', 'qcow2', p, size);
  return p;
}

describe('qcow2 images that must not open', () => {
  it('a missing file is ENOENT naming the path', async () => {
    const path = tmp.file('nope.qcow2');
    const msg = await messageOf(openBlockImage(path, { format: 'qcow2' }));
    expect(msg).toMatch(/^ENOENT: /);
    expect(msg).toContain(path);
  });

  it('format=qcow2 on a raw file is EINVAL; a flipped magic probes as raw', async () => {
    const path = create('1M');
    patch(path, 0, Buffer.from('QFI\x00', 'latin1'));
    expect(await messageOf(openBlockImage(path, { format: 'qcow2' }))).toMatch(/EINVAL: .*not a qcow2 image/);
    const asRaw = await openBlockImage(path, {});
    expect(asRaw.format).toBe('raw');
    await asRaw.close();
  });

  it('a truncated header is EINVAL', async () => {
    const path = create('1M');
    truncateSync(path, 50);
    expect(await messageOf(openBlockImage(path, {}))).toMatch(/EINVAL: .*shorter than a header/);
  });

  it.each([
    ['cluster_bits=40', 20, u32(40), 'EINVAL', /cluster_bits 40/],
    ['cluster_bits=8', 20, u32(8), 'EINVAL', /cluster_bits 8/],
    ['a huge l1_size', 36, u32(0x7fffffff), 'EINVAL', /l1_size/],
    ['the L1 table past EOF', 40, u64(1n << 40n), 'EINVAL', /L1 table .* past the end/],
    ['an unaligned L1 table', 40, u64(0x30200n), 'EINVAL', /l1_table_offset .* not cluster-aligned/],
    ['the refcount table past EOF', 48, u64(1n << 30n), 'EINVAL', /refcount table .* past the end/],
    ['version 4', 4, u32(4), 'EOPNOTSUPP', /version 4/],
    ['version 1', 4, u32(1), 'EOPNOTSUPP', /version 1/],
    ['AES encryption', 32, u32(1), 'EOPNOTSUPP', /encryption/],
    ['an unknown incompatible feature bit', 72, u64(1n << 40n), 'EOPNOTSUPP', /incompatible feature bits 0x10000000000/],
    ['an external data file', 72, u64(1n << 2n), 'EOPNOTSUPP', /external data file/],
    ['extended L2 entries', 72, u64(1n << 4n), 'EOPNOTSUPP', /extended L2/],
    ['refcount_order 5', 96, u32(5), 'EOPNOTSUPP', /refcount_order 5/],
    ['a virtual size larger than the L1 table maps', 24, u64(1n << 50n), 'EINVAL', /l1_size .* too small/],
    ['a backing file offset with an empty name', 8, u64(512n), 'EINVAL', /backing file name \(0 bytes at 512\)/],
  ])('%s is a clean XenError', async (_name, at, bytes, errno, re) => {
    const path = create('1M');
    patch(path, at, bytes);
    const msg = await messageOf(openBlockImage(path, {}));
    expect(msg.startsWith(`${errno}: `), msg).toBe(true);
    expect(msg).toMatch(re);
    expect(msg).toContain(path);
  });

  it('a dirty or corrupt image opens read-only but not for writing', async () => {
    for (const [bit, re] of [
      [1n, /dirty/],
      [2n, /marked corrupt/],
    ] as const) {
      const path = create('1M');
      patch(path, 72, u64(bit));
      expect(await messageOf(openBlockImage(path, {}))).toMatch(re);
      const ro = await openBlockImage(path, { readOnly: true });
      expect(firstDiff(await ro.read(0, 1024), Buffer.alloc(1024))).toBe(-1);
      await ro.close();
    }
  });

  it('an image with internal snapshots opens read-only but not for writing', async () => {
    const path = create('1M');
    const img = await openBlockImage(path, {});
    await img.write(0, Buffer.alloc(512, 0xab));
    await img.close();
    qemuImg('snapshot', '-c', 'snap1', path);
    expect(await errnoOf(openBlockImage(path, {}))).toBe('EOPNOTSUPP');
    const ro = await openBlockImage(path, { readOnly: true });
    expect(Buffer.from(await ro.read(0, 512)).equals(Buffer.alloc(512, 0xab))).toBe(true);
    await ro.close();
  });

  it('a backing file on a probed image is refused with EOPNOTSUPP (see image-qcow2-backing.test.ts)', async () => {
    const base = create('1M');
    const path = tmp.file(`overlay${n++}.qcow2`);
    qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', path);
    expect(await messageOf(openBlockImage(path, {}))).toMatch(/^EOPNOTSUPP: .*format was probed/);
  });

  it.each([
    ['the refcount table', 48],
    ['the L1 table', 40],
  ])('an L2 entry pointing at %s is refused for writing with EIO, and the table survives', async (_name, field) => {
    const path = create('1M');
    const img = await openBlockImage(path, {});
    await img.write(0, Buffer.alloc(65536, 1));
    await img.close();
    // Guest cluster 0's L2 entry -> the metadata cluster, COPIED set.
    const l1Offset = Number(readAt(path, 40, 8).readBigUInt64BE(0));
    const l2Offset = Number(readAt(path, l1Offset, 8).readBigUInt64BE(0) & ((1n << 56n) - 512n));
    const target = readAt(path, field, 8).readBigUInt64BE(0);
    patch(path, l2Offset, u64((1n << 63n) | target));
    const before = readAt(path, Number(target), 65536);
    const hostile = await openBlockImage(path, {});
    expect(await messageOf(hostile.write(0, Buffer.alloc(512, 2)))).toMatch(/^EIO: .*maps to the (refcount|L1) table/);
    await hostile.close();
    expect(readAt(path, Number(target), 65536).equals(before)).toBe(true);
  });

  it('an L1 entry or refcount block over other metadata is EINVAL at open', async () => {
    // L1 entry 0 -> the refcount table (an L2 table there would be overwritten).
    const a = create('1M');
    const img = await openBlockImage(a, {});
    await img.write(0, Buffer.alloc(512, 1));
    await img.close();
    const l1Offset = Number(readAt(a, 40, 8).readBigUInt64BE(0));
    const rtOffset = readAt(a, 48, 8).readBigUInt64BE(0);
    patch(a, l1Offset, u64((1n << 63n) | rtOffset));
    expect(await messageOf(openBlockImage(a, { readOnly: true }))).toMatch(/^EINVAL: .*L1 entry 0: L2 table at \d+ overlaps the refcount table/);
    // Refcount table entry 1 -> the L1 table (refcount updates would land in it).
    const b = create('1M');
    const w = await openBlockImage(b, {});
    await w.write(0, Buffer.alloc(65536, 1)); // the file now extends past the L1 table's cluster
    await w.close();
    const rt = Number(readAt(b, 48, 8).readBigUInt64BE(0));
    patch(b, rt + 8, u64(BigInt(readAt(b, 40, 8).readBigUInt64BE(0))));
    expect(await messageOf(openBlockImage(b, {}))).toMatch(/^EINVAL: .*refcount table entry 1: refcount block at \d+ overlaps the L1 table/);
  });

  it('an L2 entry past the end of the file reads zeros but refuses writes with EIO', async () => {
    const path = create('1M');
    const img = await openBlockImage(path, {});
    await img.write(0, Buffer.alloc(65536, 1));
    await img.close();
    const l1Offset = Number(readAt(path, 40, 8).readBigUInt64BE(0));
    const l2Offset = Number(readAt(path, l1Offset, 8).readBigUInt64BE(0) & ((1n << 56n) - 512n));
    patch(path, l2Offset, u64((1n << 63n) | (1n << 40n)));
    const sizeBefore = statSync(path).size;
    const hostile = await openBlockImage(path, {});
    expect(firstDiff(await hostile.read(0, 4096), Buffer.alloc(4096))).toBe(-1);
    expect(await messageOf(hostile.write(0, Buffer.alloc(512, 2)))).toMatch(/^EIO: .*past the end of the file/);
    await hostile.close();
    expect(statSync(path).size).toBe(sizeBefore);
  });

  it('a refcount that would drop below zero is EIO, and then no more metadata is written', async () => {
    const path = create('1M');
    const img = await openBlockImage(path, {});
    await img.write(0, Buffer.alloc(65536, 1));
    await img.write(2 * 65536, Buffer.alloc(65536, 2));
    await img.close();
    // Find guest cluster 0's host cluster and zero its refcount (a corrupt image).
    const l1Offset = Number(readAt(path, 40, 8).readBigUInt64BE(0));
    const l2Offset = Number(readAt(path, l1Offset, 8).readBigUInt64BE(0) & ((1n << 56n) - 512n));
    const host = Number(readAt(path, l2Offset, 8).readBigUInt64BE(0) & ((1n << 56n) - 512n));
    const rt = Number(readAt(path, 48, 8).readBigUInt64BE(0));
    const block0 = Number(readAt(path, rt, 8).readBigUInt64BE(0));
    patch(path, block0 + (host / 65536) * 2, Buffer.alloc(2));
    const l2Before = readAt(path, l2Offset, 65536);
    const hostile = await openBlockImage(path, {});
    expect(await messageOf(hostile.discard(0, 65536))).toMatch(/^EIO: .*refcount of cluster \d+ would drop below zero/);
    // Memory and file may now disagree: allocating writes and discards are refused with the same error.
    expect(await messageOf(hostile.write(4 * 65536, Buffer.alloc(512, 3)))).toMatch(/^EIO: .*would drop below zero/);
    expect(await messageOf(hostile.discard(2 * 65536, 65536))).toMatch(/^EIO: .*would drop below zero/);
    // Reads still work; the L2 table on disk was not touched.
    expect(Buffer.from(await hostile.read(2 * 65536, 512)).equals(Buffer.alloc(512, 2))).toBe(true);
    await hostile.close();
    expect(readAt(path, l2Offset, 65536).equals(l2Before)).toBe(true);
  });

  it('fuzz: random bytes flipped in the header and metadata give XenErrors only, and never grow the file wildly', async () => {
    // A small image with data, 4 KiB clusters so the metadata is dense.
    const template = tmp.file('fuzz-template.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', template, '4M');
    const t = await openBlockImage(template, {});
    const r = prng(2024);
    for (let i = 0; i < 16; i++) await t.write(r.int(1000) * 4096, r.bytes(8192));
    await t.close();
    const clean = readFileSync(template);
    const l1 = Number(clean.readBigUInt64BE(40));
    const rt = Number(clean.readBigUInt64BE(48));
    const opened = { yes: 0, no: 0 };
    for (let iter = 0; iter < 150; iter++) {
      const bad = Buffer.from(clean);
      const regions = [0, l1, rt, rt + 4096 /* first refcount block, usually */, l1 + 4096 /* an L2 table, usually */];
      for (let k = 1 + r.int(4); k > 0; k--) {
        const base = regions[r.int(regions.length)]!;
        const at = Math.min(bad.length - 1, base + r.int(base === 0 ? 112 : 64));
        bad[at] = r.int(256);
      }
      const path = tmp.file('fuzz.qcow2');
      writeFileSync(path, bad);
      try {
        const img = await openBlockImage(path, { format: 'qcow2' });
        opened.yes++;
        const sectors = img.size / 512;
        for (const op of [
          () => img.read(r.int(Math.max(1, sectors - 128)) * 512, Math.min(img.size, 65536)),
          () => img.write(r.int(Math.max(1, sectors - 16)) * 512, Buffer.alloc(Math.min(img.size, 8192), 0x5a)),
          () => img.discard(r.int(Math.max(1, sectors - 256)) * 512, Math.min(img.size, 131072)),
          () => img.read(0, Math.min(img.size, 4 << 20)),
        ]) {
          try {
            await op();
          } catch (e) {
            if (!(e instanceof XenError)) throw new Error(`iteration ${iter}: non-XenError ${String(e)}`, { cause: e });
          }
        }
        await img.close();
      } catch (e) {
        if (!(e instanceof XenError)) throw new Error(`iteration ${iter}: non-XenError ${String(e)}`, { cause: e });
        opened.no++;
      }
      expect(statSync(path).size, `iteration ${iter}`).toBeLessThan(clean.length + 16 * 1024 * 1024);
    }
    // Both outcomes happened: the fuzzing reached the I/O paths, not just the header checks.
    expect(opened.yes).toBeGreaterThan(10);
    expect(opened.no).toBeGreaterThan(10);
  });
});
