/**
 * The qcow2 image layer against the real qemu-img: images qemu-img made are
 * written through openBlockImage, then `qemu-img check` must find no errors or
 * leaks and `qemu-img convert -O raw` must give exactly the bytes written
 * (tracked in a shadow buffer); images qemu-img wrote must read back exactly.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { openBlockImage } from '../dist/image/block-image.js';
import { errnoOf, expectClean, expectConvertsTo, expectReadsBack, firstDiff, prng, put, qemuCheck, qemuImg, readAt, tempDir } from './image-helpers.js';

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
    // 9 MiB of data: 18,432 data clusters plus L2 tables; one refcount block
    // covers 256 clusters (128 KiB) and the one-cluster table 64 blocks (8 MiB).
    for (let off = 0; off < 9 * MiB; off += MiB) await put(img, shadow, off, r.bytes(MiB));
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
    const path = create('8M');
    const img = await openBlockImage(path, {});
    const shadow = Buffer.alloc(img.size);
    const r = prng(99);
    await put(img, shadow, 0, r.bytes(6 * MiB));
    const allocatedBefore = qemuCheck(path).allocatedClusters;
    const discards: Array<[number, number]> = [
      [65536, 4 * 65536], // whole clusters
      [10 * 65536 + 512, 3 * 65536], // partial head and tail
      [20 * 65536 + 4096, 4096], // inside one cluster
      [2 * MiB, 2 * MiB], // a larger aligned range
      [7 * MiB, 65536], // never written
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

  it('host offsets above 2 GiB and 4 GiB (a sparse 6 GiB preallocation=metadata image) map right', async () => {
    const path = create('6G', 'preallocation=metadata');
    const img = await openBlockImage(path, {});
    const GiB = 1024 * MiB;
    const spots = [2 * GiB + 65536, 4 * GiB + 3 * 65536 + 4096, 6 * GiB - 65536];
    const r = prng(6);
    const datas = spots.map(() => r.bytes(8192));
    for (let i = 0; i < spots.length; i++) await img.write(spots[i]!, datas[i]!);
    for (let i = 0; i < spots.length; i++) expect(Buffer.from(await img.read(spots[i]!, 8192)).equals(datas[i]!)).toBe(true);
    await img.close();
    expectClean(path);
    // qemu-img maps each guest offset to the host offset holding our bytes.
    const map = JSON.parse(qemuImg('map', '--output=json', path)) as Array<{ start: number; length: number; data: boolean; zero: boolean; offset?: number }>;
    for (let i = 0; i < spots.length; i++) {
      const ext = map.find((m) => m.start <= spots[i]! && spots[i]! < m.start + m.length && m.data && !m.zero);
      expect(ext?.offset, `guest ${spots[i]}`).toBeGreaterThan(2 * GiB);
      expect(readAt(path, ext!.offset! + spots[i]! - ext!.start, 8192).equals(datas[i]!)).toBe(true);
    }
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
