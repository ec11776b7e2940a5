/**
 * Crash consistency of the qcow2 writer: a writer process killed at any point
 * must leave an image that `qemu-img check` finds free of corruption (leaked
 * clusters allowed, as after a QEMU crash).  This is what the metadata order
 * (data, refcount, L2, L1) buys.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openBlockImage } from '../dist/image/block-image.js';
import { qemuCheck, qemuImg, tempDir } from './image-helpers.js';

const tmp = tempDir('qcow2-crash');
afterAll(() => tmp.remove());

function create(size: string, opts: string): string {
  const p = tmp.file('template.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', opts, p, size);
  return p;
}

/** The compiled image module, for the crash writer child. */
const IMAGE_MODULE = fileURLToPath(new URL('../dist/image/block-image.js', import.meta.url));

/**
 * A child that writes (and sometimes discards) at random, 4 in flight, and
 * SIGKILLs itself just before its Nth positional write.
 */
const CRASH_WRITER = `
const fsp = await import('node:fs/promises');
const probe = await fsp.open(process.argv[2], 'r');
const proto = Object.getPrototypeOf(probe);
await probe.close();
const write = proto.write;
let writes = 0;
const killAt = Number(process.argv[3]);
proto.write = function (...args) {
  if (++writes === killAt) process.kill(process.pid, 'SIGKILL');
  return write.apply(this, args);
};
const { openBlockImage } = await import(process.argv[1]);
const img = await openBlockImage(process.argv[2], {});
let seed = 77;
const rnd = (n) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return Math.floor((seed / 2 ** 32) * n); };
const worker = async () => {
  for (;;) {
    const len = (1 + rnd(64)) * 512;
    const off = rnd((img.size - len) / 512) * 512;
    if (rnd(10) === 0) await img.discard(off, len);
    else await img.write(off, Buffer.alloc(len, 1 + rnd(255)));
  }
};
await Promise.all(Array.from({ length: 4 }, worker));
`;

describe('qcow2 crash consistency', () => {
  it('a writer killed before any one of its pwrites leaves no corruption, at worst leaked clusters', async () => {
    // Each run SIGKILLs the writer just before its Nth pwrite (data or
    // metadata), so the file holds exactly the writes issued before it: every
    // such prefix must be consistent if metadata is ordered data -> refcount ->
    // L2 -> L1.  512-byte clusters: new refcount blocks and a growing table too.
    const template = create('16M', 'cluster_size=512');
    const results: string[] = [];
    for (const killAt of [7, 31, 101, 211, 302, 555, 733, 1201]) {
      const path = tmp.file(`crash${killAt}.qcow2`);
      writeFileSync(path, readFileSync(template));
      const child = spawn(process.execPath, ['--input-type=module', '-e', CRASH_WRITER, IMAGE_MODULE, path, String(killAt)], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const signal = await new Promise<string | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
      expect(signal).toBe('SIGKILL');
      const c = qemuCheck(path);
      expect({ killAt, errors: c.checkErrors, corruptions: c.corruptions }, c.raw).toEqual({ killAt, errors: 0, corruptions: 0 });
      expect([0, 3], c.raw).toContain(c.exitCode); // 3 = leaks only
      results.push(`${killAt}:${c.leaks}`);
      const img = await openBlockImage(path, { readOnly: true });
      await img.read(0, img.size);
      await img.close();
    }
    // The kills landed mid-stream: some runs left leaked clusters behind.
    expect(results.some((r) => !r.endsWith(':0')), results.join(' ')).toBe(true);
  });
});
