/**
 * blkfront re-issues in-flight writes after blkback restarts: the block
 * driver domain is killed with 32 writes on its ring, the supervisor starts
 * a new one (a new domain) and moves the vbd to it, and every write the
 * front end was told succeeded is on disk.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XenbusState } from '@xenbox/abi';
import { Blkfront } from '@xenbox/libxen';
import { BlkStack } from './helpers/blk-stack.js';

const MiB = 1024 * 1024;
const DEVID = 51712;
let s: BlkStack;
let dir: string;

beforeAll(async () => {
  // Persistent grants on: the front end's pages are mapped by the blkback that dies.
  s = await BlkStack.up('blkr', { persistentGrants: true });
  dir = mkdtempSync('/tmp/xb-blkr-');
}, 60_000);
afterAll(async () => {
  await s?.down();
  rmSync(dir, { recursive: true, force: true });
});

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
}

async function waitFor(pred: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('blkback restart', () => {
  it('kill -9 with 32 writes in flight: a new blkback domain takes over and every acknowledged write is on disk', async () => {
    const image = join(dir, 'disk.raw');
    writeFileSync(image, new Uint8Array(8 * MiB));
    const expected = new Uint8Array(8 * MiB);
    const f = await s.frontDomain('fe');
    await s.addVbd({ frontend: f.domid, devid: DEVID, params: `raw:${image}` });
    const blk = await Blkfront.connect({ hv: f.hv, xs: f.xs, domid: f.domid, devid: DEVID });
    const oldBackend = blk.info.backend;

    // Acknowledged before the crash.
    const early = Array.from({ length: 8 }, (_, i) => [i * 128, bytes(64 * 1024, 1000 + i)] as const);
    await Promise.all(early.map(([sector, data]) => blk.write(sector, data)));
    for (const [sector, data] of early) expected.set(data, sector * 512);

    // Freeze blkback so the 32 writes sit on its ring unanswered, then kill it.
    const victimPid = s.blkbackPid();
    process.kill(victimPid, 'SIGSTOP');
    const late = Array.from({ length: 32 }, (_, i) => [2048 + i * 128, bytes(64 * 1024, 2000 + i)] as const);
    let acked = 0;
    const writes = late.map(([sector, data]) => blk.write(sector, data).then(() => acked++));
    await waitFor(() => blk.inFlight === 32 && blk.raw.ring.reqProdPvt - blk.raw.ring.rspCons === 32);
    await new Promise((r) => setTimeout(r, 100));
    expect(acked).toBe(0);
    process.kill(victimPid, 'SIGKILL');
    for (const [sector, data] of late) expected.set(data, sector * 512);

    // The supervisor restarts blkback as a new domain and moves the vbd to it (dom0
    // libxl/device-rebind.ts): new backend directory, the front end's backend/backend-id.
    const newBackend = await s.blkbackDomid(true);
    expect(newBackend).not.toBe(oldBackend);

    await Promise.all(writes);
    expect(acked).toBe(32);
    expect(blk.reconnects).toBe(1);
    expect(blk.reissued).toBe(32);
    expect(blk.info.backend).toBe(newBackend);
    expect(await s.xs.read(`/local/domain/${f.domid}/device/vbd/${DEVID}/backend-id`)).toBe(String(newBackend));
    expect(await s.backendState(f.domid, DEVID, newBackend)).toBe(XenbusState.Connected);
    await blk.flush();
    expect(Buffer.compare(readFileSync(image), expected)).toBe(0);
    expect(Buffer.compare(await blk.read(0, (8 * MiB) / 512), expected)).toBe(0);
    await blk.close();
  }, 60_000);
});
