/**
 * The qcow2 image layer under concurrency, as blkback drives it (up to 32
 * requests in flight): allocating writes sharing clusters, writes mixed with
 * discards, overlapping requests, reads racing allocations.  Afterwards
 * `qemu-img check` must be clean and qemu-img must read what we read.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openBlockImage } from '../dist/image/block-image.js';
import { expectClean, expectConvertsTo, expectReadsBack, prng, put, qemuImg, tempDir } from './image-helpers.js';

const tmp = tempDir('qcow2-conc');
afterAll(() => tmp.remove());

const MiB = 1 << 20;
let n = 0;
function create(size: string, opts?: string): string {
  const p = tmp.file(`img${n++}.qcow2`);
  qemuImg('create', '-q', '-f', 'qcow2', ...(opts ? ['-o', opts] : []), p, size);
  return p;
}

describe('qcow2 images under concurrent I/O', () => {
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

  it('concurrent writes and discards on disjoint ranges, sharing clusters, leave a consistent image', async () => {
    const path = create('8M');
    const img = await openBlockImage(path, {});
    const shadow = Buffer.alloc(img.size);
    const r = prng(4321);
    await put(img, shadow, 0, r.bytes(img.size)); // everything allocated, so discards free clusters
    for (let round = 0; round < 3; round++) {
      // 4 KiB slots in the first 4 MiB: write or discard (partial clusters, zeroed in place).
      const jobs: Promise<void>[] = [];
      const slots = new Set<number>();
      while (slots.size < 48) slots.add(r.int(1024));
      for (const s of slots) {
        const off = s * 4096;
        if (r.int(3) === 0) {
          jobs.push(img.discard(off, 4096));
          shadow.fill(0, off, off + 4096);
        } else {
          const data = r.bytes(4096);
          data.copy(shadow, off);
          jobs.push(img.write(off, data));
        }
      }
      // 128 KiB slots in the last 4 MiB: whole-cluster discards and re-allocating writes.
      const big = new Set<number>();
      while (big.size < 16) big.add(r.int(32));
      for (const s of big) {
        const off = 4 * MiB + s * 128 * 1024;
        if (r.int(2) === 0) {
          jobs.push(img.discard(off, 128 * 1024));
          shadow.fill(0, off, off + 128 * 1024);
        } else {
          const data = r.bytes(128 * 1024);
          data.copy(shadow, off);
          jobs.push(img.write(off, data));
        }
      }
      await Promise.all(jobs);
    }
    await expectReadsBack(img, shadow);
    await img.close();
    expectClean(path);
    expectConvertsTo(path, shadow);
  });

  it.each([
    ['64 KiB clusters', undefined],
    ['4 KiB clusters', 'cluster_size=4096'],
  ])('overlapping writes and discards, 32 in flight (%s): no leaks or corruption, and qemu-img reads what we read', async (_n, opts) => {
    const path = create('4M', opts);
    const img = await openBlockImage(path, {});
    const r = prng(777);
    let next = 0;
    const worker = async () => {
      while (next++ < 400) {
        const len = (1 + r.int(160)) * 512;
        const off = r.int((img.size - len) / 512) * 512;
        if (r.int(4) === 0) await img.discard(off, len);
        else await img.write(off, r.bytes(len));
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const ours = Buffer.from(await img.read(0, img.size));
    await img.close();
    expectClean(path);
    expectConvertsTo(path, ours);
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
