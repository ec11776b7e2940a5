/**
 * The PV kernel drivers' pure parts, compiled for the host with gcc:
 * ring.h/blkif.h/netif.h (layouts, both ends of a ring, notification
 * hold-off across the 32-bit wrap, a lying peer), blkfront against a fake
 * backend (reconnection and re-issue, hostile responses), netfront against a
 * fake netback (multi-slot and extra-info frames, hostile responses,
 * reconnection), the IP stack (ARP,
 * IPv4, ICMP echo, UDP, hostile frames) and the disktest pattern, which
 * the TypeScript regeneration used by the end-to-end tests must match.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternSector } from './helpers/disk-pattern.js';
import { REPO } from './helpers/paths.js';

const SRC = resolve(REPO, 'packages/guests/pvkernel');
const haveGcc = spawnSync('gcc', ['--version']).status === 0;
let dir = '';

function build(out: string, files: string[]): string {
  const exe = join(dir, out);
  execFileSync('gcc', ['-std=gnu11', '-O1', '-Wall', '-Wextra', '-Werror', '-o', exe, ...files.map((f) => join(SRC, f))], { stdio: 'pipe' });
  return exe;
}

beforeAll(() => {
  if (haveGcc) dir = mkdtempSync('/tmp/xb-pvk-unit-');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!haveGcc)('pvkernel drivers on the host', () => {
  it('ring.h: both ends of blkif and netif rings, Xen layouts, notification hold-off and overflow checks', () => {
    const exe = build('ring-test', ['test/ring-test.c']);
    const r = spawnSync(exe, { encoding: 'utf8' });
    expect(r.stdout).toMatch(/ring: \d+ checks, 0 failures/);
    expect(r.status).toBe(0);
  });

  it('blkfront against a fake blkback: persistent/indirect and plain requests, out-of-order answers, errors, a bogus id, a lying rsp_prod, and backends that die with requests in flight (every one re-issued, every write on the disk)', () => {
    const exe = build('blkfront-test', ['test/blkfront-test.c', 'blkfront.c', 'xenfront.c', 'pattern.c', 'args.c']);
    const r = spawnSync(exe, { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toMatch(/blkfront: \d+ checks, 0 failures/);
    expect(r.status).toBe(0);
  });

  it('netfront against a fake netback: handshake keys, a stocked rx ring, frames in one slot, across slots and after an extra-info slot, hostile responses dropped with every buffer posted again, a lying rsp_prod and a backend restart reconnected', () => {
    const exe = build('netfront-test', ['test/netfront-test.c', 'netfront.c', 'xenfront.c', 'net.c', 'arp.c', 'ip.c', 'icmp.c', 'udp.c']);
    const r = spawnSync(exe, { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toMatch(/netfront: \d+ checks, 0 failures/);
    expect(r.status).toBe(0);
  });

  describe('the IP stack and helpers', () => {
    let exe = '';
    beforeAll(() => {
      exe = build('net-test', ['test/net-test.c', 'net.c', 'arp.c', 'ip.c', 'icmp.c', 'udp.c', 'pattern.c', 'args.c']);
    });

    it('answers ARP and ICMP echo, echoes UDP, resolves with retries and drops hostile frames', () => {
      const r = spawnSync(exe, { encoding: 'utf8' });
      expect(r.stdout).toMatch(/net: \d+ checks, 0 failures/);
      expect(r.status).toBe(0);
    });

    it('writes the same disk pattern as the TypeScript regeneration the end-to-end tests use', () => {
      for (const [seed, sector] of [[1n, 0n], [42n, 12345n], [0n, 0xffffffffn], [0xdeadbeefcafen, 7n]] as const) {
        const hex = execFileSync(exe, ['pattern', seed.toString(), sector.toString()], { encoding: 'utf8' }).trim();
        expect(hex, `seed ${seed} sector ${sector}`).toBe(patternSector(seed, sector).toString('hex'));
      }
    });

    it("computes zlib's CRC-32 (what dd prints)", async () => {
      const { crc32 } = await import('node:zlib');
      const out = execFileSync(exe, ['crc32', 'xenbox pvkernel'], { encoding: 'utf8' }).trim();
      expect(out).toBe((crc32(Buffer.from('xenbox pvkernel')) >>> 0).toString(16).padStart(8, '0'));
    });
  });
});
