/**
 * The PVH image (libxl/guest-image.ts): the device tree's /memory stops
 * before the two magic pages at the top of RAM (the console and xenstore
 * rings, libxl/domain-rings.ts), and nothing is loaded there.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GUEST_RAM_BASE, GUEST_RAM_BASE_GFN, MAGIC_PAGES, magicPageGfns } from '@xenbox/abi';
import { pvhGuestImage } from '../src/libxl/guest-image.js';

const KERNEL = resolve(import.meta.dirname, '../../guests/images/pv-xs-test.elf');

/** The big-endian cells of `reg = <base size>` with #address-cells = #size-cells = 2. */
function regCells(base: number, size: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(Math.floor(base / 2 ** 32), 0);
  b.writeUInt32BE(base >>> 0, 4);
  b.writeUInt32BE(Math.floor(size / 2 ** 32), 8);
  b.writeUInt32BE(size >>> 0, 12);
  return b;
}

describe('a PVH guest image', () => {
  it('describes RAM up to the magic pages in /memory, and loads nothing on them', () => {
    const memBytes = 16 * 1024 * 1024;
    const img = pvhGuestImage({ kernel: readFileSync(KERNEL), kernelPath: KERNEL, memBytes, vcpus: 1 });
    const dtb = Buffer.from(img.chunks.find((c) => c.gpa === img.dtbAddr)!.data);
    const visible = memBytes - MAGIC_PAGES.count * 4096;
    expect(dtb.indexOf(regCells(GUEST_RAM_BASE, visible))).toBeGreaterThan(0);
    expect(dtb.indexOf(regCells(GUEST_RAM_BASE, memBytes))).toBe(-1);
    const magic = magicPageGfns(GUEST_RAM_BASE_GFN, memBytes / 4096);
    expect(magic).toMatchObject({ console: 0x80ffe, xenstore: 0x80fff });
    for (const c of img.chunks) expect(c.gpa + c.data.length).toBeLessThanOrEqual(magic.first * 4096);
  });
});
