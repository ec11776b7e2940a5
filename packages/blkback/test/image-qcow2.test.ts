/**
 * The qcow2 image layer against the real qemu-img: images qemu-img made are
 * written through openBlockImage, then `qemu-img check` must find no errors or
 * leaks and `qemu-img convert -O raw` must give exactly the bytes written
 * (tracked in a shadow buffer); images qemu-img wrote must read back exactly.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { closeSync, openSync, readFileSync, readSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { openBlockImage, type BlockImage } from '../dist/image/block-image.js';
import { errnoOf, firstDiff, messageOf, prng, qemuCheck, qemuConvertToRaw, qemuImg, tempDir } from './image-helpers.js';

const tmp = tempDir('qcow2');
afterAll(() => tmp.remove());

const MiB = 1 << 20;
let n = 0;
/** A fresh image made by `qemu-img create -f qcow2 [-o opts] x.qcow2 size`. */
function create(size: string, opts?: string): string {
  const p = tmp.file(`img${n++}.qcow2`);
  qemuImg('create', '-q', '-f', 'qcow2', ...(opts ? ['-o', opts] : []), p, size);
  return p;
}

/** Write `data` at `off` through the image and into the shadow copy. */
async function put(img: BlockImage, shadow: Buffer, off: number, data: Buffer): Promise<void> {
  await img.write(off, data);
  data.copy(shadow, off);
}

function expectClean(path: string): ReturnType<typeof qemuCheck> {
  const c = qemuCheck(path);
  expect({ exit: c.exitCode, errors: c.checkErrors, corruptions: c.corruptions, leaks: c.leaks }, c.raw).toEqual({
    exit: 0,
    errors: 0,
    corruptions: 0,
    leaks: 0,
  });
  return c;
}

function expectConvertsTo(path: string, shadow: Buffer): void {
  const raw = qemuConvertToRaw(path, `${path}.raw`);
  expect(raw.length).toBe(shadow.length);
  expect(firstDiff(raw, shadow)).toBe(-1);
}

async function expectReadsBack(img: BlockImage, shadow: Buffer): Promise<void> {
  const back = await img.read(0, img.size);
  expect(firstDiff(back, shadow)).toBe(-1);
}

/** Header field helpers for hostile images. */
function patch(path: string, at: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, at);
  closeSync(fd);
}
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const u64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
};
function readAt(path: string, at: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const fd = openSync(path, 'r');
  readSync(fd, b, 0, len, at);
  closeSync(fd);
  return b;
}

describe('qcow2 images written through openBlockImage', () => {
  it.each([
    ['64 KiB clusters (qemu-img default, v3)', undefined],
    ['4 KiB clusters', 'cluster_size=4096'],
    ['a version 2 image (compat=0.10)', 'compat=0.10'],
  ])('scattered writes to %s: partial clusters, cluster boundaries; qemu-img check is clean and convert gives the bytes written', async (_name, opts) => {
    const path = create('16M', opts);
    const img = await openBlockImage(path, {});
    expect([img.format, img.size, img.readOnly]).toEqual(['qcow2', 16 * MiB, false]);
    const shadow = Buffer.alloc(img.size);
    const r = prng(0x5eed);
    // Fixed cases: a sector inside a cluster, a write straddling a cluster
    // boundary, one spanning several clusters with partial ends, the last sector.
    await put(img, shadow, 512, r.bytes(512));
    await put(img, shadow, 65536 - 1024, r.bytes(4096));
    await put(img, shadow, 3 * 65536 + 3584, r.bytes(5 * 65536 + 1024));
    await put(img, shadow, img.size - 512, r.bytes(512));
    for (let i = 0; i < 100; i++) {
      const len = (1 + r.int(200)) * 512;
      const off = r.int((img.size - len) / 512) * 512;
      await put(img, shadow, off, r.bytes(len));
    }
    // Rewrite some already-allocated ranges (in place).
    await put(img, shadow, 512, r.bytes(1024));
    await expectReadsBack(img, shadow);
    await img.flush();
    await img.close();
    expectClean(path);
    expectConvertsTo(path, shadow);
    // Re-opened, it still reads the same.
    const again = await openBlockImage(path, { format: 'qcow2', readOnly: true });
    await expectReadsBack(again, shadow);
    await again.close();
  });

  it.each([
    ['v3', 'compat=1.1'],
    ['v2', 'compat=0.10'],
    ['v3 with 4 KiB clusters', 'cluster_size=4096'],
  ])('reads exactly what qemu-img convert -f raw -O qcow2 wrote (%s)', async (_name, opts) => {
    const rawPath = tmp.file(`src${n++}.raw`);
    const src = Buffer.alloc(8 * MiB);
    const r = prng(42);
    // Data islands with holes between them, some straddling clusters.
    for (let i = 0; i < 40; i++) r.bytes(1 + r.int(100000)).copy(src, r.int(src.length - 100001));
    writeFileSync(rawPath, src);
    const path = tmp.file(`conv${n++}.qcow2`);
    qemuImg('convert', '-f', 'raw', '-O', 'qcow2', '-o', opts, rawPath, path);
    const img = await openBlockImage(path, {});
    expect(img.format).toBe('qcow2');
    expect(img.size).toBe(src.length);
    await expectReadsBack(img, src);
    // Unaligned-to-cluster reads across mapped and unmapped clusters.
    for (let i = 0; i < 50; i++) {
      const len = (1 + r.int(300)) * 512;
      const off = r.int((src.length - len) / 512) * 512;
      expect(firstDiff(await img.read(off, len), src.subarray(off, off + len))).toBe(-1);
    }
    await img.close();
  });

  it('grows past the first refcount block and moves the refcount table (512-byte clusters)', async () => {
    const path = create('16M', 'cluster_size=512');
    const tableClustersBefore = readAt(path, 56, 4).readUInt32BE(0);
    const tableOffsetBefore = readAt(path, 48, 8).readBigUInt64BE(0);
    const img = await openBlockImage(path, {});
    const shadow = Buffer.alloc(img.size);
    const r = prng(7);
    // 10 MiB of data: 20,480 data clusters plus L2 tables; one refcount block
    // covers 256 clusters (128 KiB) and the one-cluster table 64 blocks (8 MiB).
    for (let off = 0; off < 10 * MiB; off += MiB) await put(img, shadow, off, r.bytes(MiB));
    for (let i = 0; i < 50; i++) {
      const len = (1 + r.int(64)) * 512;
      await put(img, shadow, 10 * MiB + r.int((6 * MiB - len) / 512) * 512, r.bytes(len));
    }
    await expectReadsBack(img, shadow);
    await img.close();
    const tableClustersAfter = readAt(path, 56, 4).readUInt32BE(0);
    expect(tableClustersAfter).toBeGreaterThan(tableClustersBefore);
    expect(readAt(path, 48, 8).readBigUInt64BE(0)).not.toBe(tableOffsetBefore);
    expectClean(path);
    expectConvertsTo(path, shadow);
  });

  it('discard deallocates whole clusters and zeroes partial ones; check is clean, convert shows zeros, space is reused', async () => {
    const path = create('16M');
    const img = await openBlockImage(path, {});
    const shadow = Buffer.alloc(img.size);
    const r = prng(99);
    await put(img, shadow, 0, r.bytes(8 * MiB));
    const allocatedBefore = qemuCheck(path).allocatedClusters;
    const discards: Array<[number, number]> = [
      [65536, 4 * 65536], // whole clusters
      [10 * 65536 + 512, 3 * 65536], // partial head and tail
      [20 * 65536 + 4096, 4096], // inside one cluster
      [2 * MiB, 2 * MiB], // a larger aligned range
      [12 * MiB, 65536], // never written
    ];
    for (const [off, len] of discards) {
      await img.discard(off, len);
      shadow.fill(0, off, off + len);
    }
    await expectReadsBack(img, shadow);
    await img.flush();
    const c = expectClean(path);
    expect(c.allocatedClusters).toBeLessThan(allocatedBefore - 32);
    expectConvertsTo(path, shadow);
    // Freed clusters are reused: rewriting 1 MiB does not grow the file.
    const sizeBefore = statSync(path).size;
    await put(img, shadow, 2 * MiB, r.bytes(MiB));
    expect(statSync(path).size).toBe(sizeBefore);
    await img.close();
    expectClean(path);
    expectConvertsTo(path, shadow);
  });

  it('64 concurrent writes at random offsets, many sharing clusters, leave a consistent image', async () => {
    const path = create('16M');
    const img = await openBlockImage(path, {});
    const shadow = Buffer.alloc(img.size);
    const r = prng(1234);
    for (let round = 0; round < 4; round++) {
      // 64 distinct 4 KiB slots in 512 KiB: up to 16 writes share a 64 KiB cluster.
      const base = r.int(Math.floor(img.size / (512 * 1024))) * 512 * 1024;
      const slots = new Set<number>();
      while (slots.size < 64) slots.add(r.int(128));
      const writes = [...slots].map((s) => {
        const off = base + s * 4096;
        const data = r.bytes(4096);
        data.copy(shadow, off);
        return img.write(off, data);
      });
      // And 64 scattered 8-sector writes anywhere, in flight at the same time.
      for (let i = 0; i < 64; i++) {
        const off = r.int((img.size - 4096) / 512) * 512;
        if (off + 4096 > base && off < base + 512 * 1024) continue; // keep the shadow unambiguous
        const data = r.bytes(4096);
        if (writesOverlap(off, round)) continue;
        data.copy(shadow, off);
        writes.push(img.write(off, data));
      }
      await Promise.all(writes);
      scattered.clear();
    }
    await expectReadsBack(img, shadow);
    await img.close();
    expectClean(path);
    expectConvertsTo(path, shadow);
  });

  it('a read racing an allocating write returns the old data or the new, never a mix', async () => {
    const path = create('8M', 'cluster_size=4096');
    const img = await openBlockImage(path, {});
    const r = prng(5);
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 32; i++) {
      const off = i * 8192 + 1024; // partial clusters: the write must COW-fill with zeros
      const data = r.bytes(2048);
      jobs.push(img.write(off, data));
      jobs.push(
        (async () => {
          const got = Buffer.from(await img.read(off, 2048));
          const zeros = Buffer.alloc(2048);
          expect(got.equals(zeros) || got.equals(data)).toBe(true);
        })(),
      );
    }
    await Promise.all(jobs);
    await img.close();
    expectClean(path);
  });

  it('reads and rewrites compressed clusters (qemu-img convert -c): COW on write, references dropped', async () => {
    const rawPath = tmp.file(`csrc${n++}.raw`);
    const src = Buffer.alloc(4 * MiB);
    for (let i = 0; i < src.length; i += 4) src.writeUInt32LE(Math.floor(i / 4096) * 2654435761 >>> 0, i); // compressible
    writeFileSync(rawPath, src);
    const path = tmp.file(`comp${n++}.qcow2`);
    qemuImg('convert', '-c', '-f', 'raw', '-O', 'qcow2', rawPath, path);
    const img = await openBlockImage(path, {});
    await expectReadsBack(img, src);
    const shadow = Buffer.from(src);
    const r = prng(3);
    await put(img, shadow, 65536 + 4096, r.bytes(8192)); // partial: COW from the compressed data
    await put(img, shadow, 5 * 65536, r.bytes(65536)); // whole cluster
    await img.discard(9 * 65536, 2 * 65536);
    shadow.fill(0, 9 * 65536, 11 * 65536);
    await expectReadsBack(img, shadow);
    await img.close();
    expectClean(path);
    expectConvertsTo(path, shadow);
  });

  it('writes into preallocated zero clusters in place (preallocation=metadata): the file does not grow', async () => {
    const path = create('4M', 'preallocation=metadata');
    const sizeBefore = statSync(path).size;
    const img = await openBlockImage(path, {});
    const shadow = Buffer.alloc(img.size);
    expect(firstDiff(await img.read(0, img.size), shadow)).toBe(-1); // zero clusters read as zeros
    const r = prng(11);
    await put(img, shadow, 4096, r.bytes(4096));
    await put(img, shadow, MiB, r.bytes(3 * 65536));
    await img.close();
    expect(statSync(path).size).toBe(sizeBefore);
    expectClean(path);
    expectConvertsTo(path, shadow);
  });

  it('a read-only image refuses write and discard with EROFS, and reads', async () => {
    const path = create('1M');
    const img = await openBlockImage(path, { readOnly: true });
    expect(img.readOnly).toBe(true);
    expect(await errnoOf(img.write(0, Buffer.alloc(512)))).toBe('EROFS');
    expect(await errnoOf(img.discard(0, 512))).toBe('EROFS');
    expect(firstDiff(await img.read(0, 4096), Buffer.alloc(4096))).toBe(-1);
    await img.flush();
    await img.close();
  });

  it('refuses unaligned and out-of-range requests with EINVAL and writes nothing', async () => {
    const path = create('1M');
    const img = await openBlockImage(path, {});
    const before = readFileSync(path);
    const bad: Array<() => Promise<unknown>> = [
      () => img.read(1, 512),
      () => img.read(0, 100),
      () => img.read(img.size - 512, 1024),
      () => img.read(-512, 512),
      () => img.write(img.size, Buffer.alloc(512)),
      () => img.write(img.size - 512, Buffer.alloc(1024)),
      () => img.write(256, Buffer.alloc(512)),
      () => img.write(0, Buffer.alloc(100)),
      () => img.discard(img.size, 512),
      () => img.discard(0, 3),
      () => img.read(2 ** 60, 512),
    ];
    for (const f of bad) expect(await errnoOf(f())).toBe('EINVAL');
    await img.close();
    expect(readFileSync(path).equals(before)).toBe(true);
  });
});

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
    ['a backing file', 8, u64(512n), 'EOPNOTSUPP', /backing files/],
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

  it('a backing file made by qemu-img is refused with EOPNOTSUPP', async () => {
    const base = create('1M');
    const path = tmp.file(`overlay${n++}.qcow2`);
    qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', path);
    expect(await messageOf(openBlockImage(path, {}))).toMatch(/^EOPNOTSUPP: .*backing files/);
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
    expect(await messageOf(hostile.write(0, Buffer.alloc(512, 2)))).toMatch(/^EIO: .*maps to metadata/);
    await hostile.close();
    expect(readAt(path, Number(target), 65536).equals(before)).toBe(true);
  });
});

const scattered = new Set<number>();
/** Keep the scattered writes of one round from overlapping each other (4 KiB granules). */
function writesOverlap(off: number, _round: number): boolean {
  const first = Math.floor(off / 4096);
  const last = Math.floor((off + 4095) / 4096);
  if (scattered.has(first) || scattered.has(last)) return true;
  scattered.add(first);
  scattered.add(last);
  return false;
}
