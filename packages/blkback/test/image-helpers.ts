/**
 * Helpers for the disk image tests: a temp dir, the real qemu-img, a seeded
 * PRNG and shadow-buffer bookkeeping.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { XenError } from '@xenbox/abi';
import type { BlockImage } from '../dist/image/block-image.js';

export function tempDir(tag: string): { dir: string; file: (name: string) => string; remove: () => void } {
  const dir = mkdtempSync(`/tmp/xb-${tag}-`);
  return { dir, file: (name) => join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}

export interface CheckResult {
  exitCode: number;
  checkErrors: number;
  corruptions: number;
  leaks: number;
  allocatedClusters: number;
  raw: string;
}

/** `qemu-img check --output=json`: exit 0 = clean, 2 = corruptions, 3 = leaks. */
export function qemuCheck(path: string): CheckResult {
  const r = spawnSync('qemu-img', ['check', '--output=json', path], { encoding: 'utf8' });
  const j = JSON.parse(r.stdout || '{}') as Record<string, number>;
  return {
    exitCode: r.status ?? -1,
    checkErrors: j['check-errors'] ?? -1,
    corruptions: j['corruptions'] ?? 0,
    leaks: j['leaks'] ?? 0,
    allocatedClusters: j['allocated-clusters'] ?? -1,
    raw: r.stdout + r.stderr,
  };
}

/** The image's guest-visible contents as qemu-img sees them. */
export function qemuConvertToRaw(path: string, out: string): Buffer {
  qemuImg('convert', '-O', 'raw', path, out);
  return readFileSync(out);
}

/** A deterministic PRNG (LCG) so a failing run can be replayed. */
export function prng(seed: number): { next: () => number; int: (n: number) => number; bytes: (n: number) => Buffer } {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  return {
    next,
    int: (n) => Math.floor(next() * n),
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE((next() * 2 ** 32) >>> 0, i);
      return b;
    },
  };
}

/** The first index where two buffers differ, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** The XenError errno a promise rejects with (fails the test if it resolves or throws something else). */
export async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof XenError) return e.errno;
    throw e;
  }
  throw new Error('expected a XenError, but the call succeeded');
}

/** The message of the XenError a promise rejects with. */
export async function messageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof XenError) return e.message;
    throw e;
  }
  throw new Error('expected a XenError, but the call succeeded');
}

/** Patch and read raw bytes of an image file (hostile images). */
export function patch(path: string, at: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, at);
  closeSync(fd);
}
export const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
export const u64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
};
export function readAt(path: string, at: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const fd = openSync(path, 'r');
  readSync(fd, b, 0, len, at);
  closeSync(fd);
  return b;
}


/** Write `data` at `off` through the image and into the shadow copy. */
export async function put(img: BlockImage, shadow: Buffer, off: number, data: Buffer): Promise<void> {
  await img.write(off, data);
  data.copy(shadow, off);
}

export function expectClean(path: string): ReturnType<typeof qemuCheck> {
  const c = qemuCheck(path);
  expect({ exit: c.exitCode, errors: c.checkErrors, corruptions: c.corruptions, leaks: c.leaks }, c.raw).toEqual({
    exit: 0,
    errors: 0,
    corruptions: 0,
    leaks: 0,
  });
  return c;
}

export function expectConvertsTo(path: string, shadow: Buffer): void {
  const raw = qemuConvertToRaw(path, `${path}.raw`);
  expect(raw.length).toBe(shadow.length);
  expect(firstDiff(raw, shadow)).toBe(-1);
}

export async function expectReadsBack(img: BlockImage, shadow: Buffer): Promise<void> {
  const back = await img.read(0, img.size);
  expect(firstDiff(back, shadow)).toBe(-1);
}

