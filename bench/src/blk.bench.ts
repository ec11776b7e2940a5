/**
 * `pnpm bench blk`: disk throughput through the split block driver.
 *
 * A stack with one blkback; this process is a front-end domain using the
 * TypeScript Blkfront on a vbd backed by a raw file.  Measured: sequential
 * 64 KiB writes and reads with 32 in flight (MB/s), and 4 KiB random reads
 * and writes with 32 in flight (IOPS).  Baseline, same run, same machine:
 * the same pattern with Node FileHandle I/O on a file of the same size (both
 * through the page cache; blkback does not use O_DIRECT either).  Twice:
 * against a blkback moving data by grant copy (its default) and one mapping
 * persistent grants (`args.persistentGrants`).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XenbusState, backendPath, frontendPath, runDirLayout, type DomId } from '@xenbox/abi';
import { Blkfront, HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import { result, type Benchmark, type BenchResult } from './harness.js';

const XENBOX = resolve(fileURLToPath(import.meta.url), '../../../packages/dom0/bin/xenbox.js');
const MiB = 1024 * 1024;
const DISK = 64 * MiB;
const DEPTH = 32;
const SEQ = 64 * 1024;
const RANDOM_OPS = 4000;
const DEVID = 51712;

/** Keep `depth` operations outstanding until `total` have run; seconds taken. */
async function queue(total: number, depth: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < total) await op(next++);
  };
  await Promise.all(Array.from({ length: depth }, worker));
  return (performance.now() - t0) / 1000;
}

function randomOffsets(n: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => ((x = (x * 1103515245 + 12345) >>> 0) % (DISK / 4096)) * 4096);
}

/** A front-end domain as the toolstack makes one: created, its xenstore home, introduced. */
async function frontDomain(dom0: HypervisorConnection, xs: XenstoreClient, runDir: string, name: string): Promise<{ domid: DomId; hv: HypervisorConnection; xs: XenstoreClient }> {
  const d = await dom0.call('domctl.createdomain', { name, kind: 'service' });
  const home = `/local/domain/${d.domid}`;
  const secret = randomBytes(32).toString('hex');
  await xs.transaction(async (t) => {
    await t.mkdir(home);
    await t.setPerms(home, [{ id: 0, perm: 'n' }, { id: d.domid, perm: 'r' }]);
    await t.write(`${home}/name`, name);
    await t.mkdir(`${home}/device`);
  });
  await xs.introduce(d.domid, { secret });
  const hv = await HypervisorConnection.connect({ runDir, domid: d.domid, token: d.token });
  return { domid: d.domid, hv, xs: await XenstoreClient.connectZmq({ runDir }, { domid: d.domid, secret }) };
}

/** libxl__device_generic_add for a vbd (as packages/dom0/src/libxl/device.ts writes it). */
async function addVbd(xs: XenstoreClient, backend: DomId, frontend: DomId, image: string): Promise<void> {
  const fe = frontendPath(frontend, 'vbd', DEVID);
  const be = backendPath(backend, 'vbd', frontend, DEVID);
  await xs.transaction(async (t) => {
    await t.mkdir(fe);
    await t.setPerms(fe, [{ id: frontend, perm: 'n' }, { id: backend, perm: 'r' }]);
    await t.mkdir(be);
    await t.setPerms(be, [{ id: backend, perm: 'n' }, { id: frontend, perm: 'r' }]);
    const feKeys = { backend: be, 'backend-id': String(backend), state: String(XenbusState.Initialising), 'virtual-device': String(DEVID), 'device-type': 'disk' };
    const beKeys = { frontend: fe, 'frontend-id': String(frontend), online: '1', state: String(XenbusState.Initialising), params: `raw:${image}`, type: 'qdisk', mode: 'w', 'device-type': 'disk' };
    for (const [k, v] of Object.entries(feKeys)) await t.write(`${fe}/${k}`, v);
    for (const [k, v] of Object.entries(beKeys)) await t.write(`${be}/${k}`, v);
  });
}

interface Pattern {
  seqWrite: number;
  seqRead: number;
  randWrite: number;
  randRead: number;
}

/** The four figures through blkfront (MB/s, MB/s, IOPS, IOPS). */
async function viaBlkfront(blk: Blkfront): Promise<Pattern> {
  const buf = new Uint8Array(SEQ).fill(0x5a);
  const n = DISK / SEQ;
  const seqWrite = DISK / MiB / (await queue(n, DEPTH, (i) => blk.write((i * SEQ) / 512, buf)));
  await blk.flush();
  const seqRead = DISK / MiB / (await queue(n, DEPTH, (i) => blk.read((i * SEQ) / 512, SEQ / 512)));
  const offs = randomOffsets(RANDOM_OPS, 7);
  const small = new Uint8Array(4096).fill(0xa5);
  const randWrite = RANDOM_OPS / (await queue(RANDOM_OPS, DEPTH, (i) => blk.write(offs[i]! / 512, small)));
  const randRead = RANDOM_OPS / (await queue(RANDOM_OPS, DEPTH, (i) => blk.read(offs[i]! / 512, 8)));
  return { seqWrite, seqRead, randWrite, randRead };
}

/** The same four with FileHandle positional I/O. */
async function viaFile(path: string): Promise<Pattern> {
  await writeFile(path, new Uint8Array(DISK));
  const fh = await open(path, 'r+');
  try {
    const buf = new Uint8Array(SEQ).fill(0x5a);
    const n = DISK / SEQ;
    const seqWrite = DISK / MiB / (await queue(n, DEPTH, (i) => fh.write(buf, 0, SEQ, i * SEQ)));
    await fh.datasync();
    const seqRead = DISK / MiB / (await queue(n, DEPTH, (i) => fh.read(new Uint8Array(SEQ), 0, SEQ, i * SEQ)));
    const offs = randomOffsets(RANDOM_OPS, 7);
    const small = new Uint8Array(4096).fill(0xa5);
    const randWrite = RANDOM_OPS / (await queue(RANDOM_OPS, DEPTH, (i) => fh.write(small, 0, 4096, offs[i]!)));
    const randRead = RANDOM_OPS / (await queue(RANDOM_OPS, DEPTH, (i) => fh.read(new Uint8Array(4096), 0, 4096, offs[i]!)));
    return { seqWrite, seqRead, randWrite, randRead };
  } finally {
    await fh.close();
  }
}

export const benchmark: Benchmark = {
  name: 'blk',
  description: 'TS blkfront -> blkback -> raw file vs FileHandle I/O on the same machine (32 in flight)',
  async run({ tmpDir, progress }) {
    const runDir = join(tmpDir, 'run');
    const cfg = join(tmpDir, 'stack.json');
    // Two blkbacks: grant copy (the default) and one that maps persistent grants.
    const services = [
      { name: 'blkback', kind: 'blkback' },
      { name: 'blkback-pg', kind: 'blkback', args: { persistentGrants: true } },
    ];
    writeFileSync(cfg, JSON.stringify({ services, autostart: null, hypervisor: { pcpus: 1 } }));
    execFileSync(process.execPath, [XENBOX, 'up', '--detach', '--run-dir', runDir, '--config', cfg], { stdio: 'ignore' });
    const dom0 = await HypervisorConnection.connect({ runDir, domid: 0, token: readFileSync(runDirLayout(runDir).dom0Token, 'utf8').trim() });
    const xs = await XenstoreClient.connectRunDir(runDir);
    try {
      const domains = await dom0.call('sysctl.getdomaininfolist', {});
      const out: BenchResult[] = [];
      progress('baseline: FileHandle');
      const base = await viaFile(join(tmpDir, 'baseline.raw'));
      for (const persistent of [false, true]) {
        const backend = domains.find((d) => d.name === (persistent ? 'blkback-pg' : 'blkback'));
        if (!backend) throw new Error('the stack is missing a blkback');
        const fe = await frontDomain(dom0, xs, runDir, persistent ? 'bench-front-p' : 'bench-front-c');
        const image = join(tmpDir, `disk-${persistent}.raw`);
        writeFileSync(image, new Uint8Array(DISK));
        await addVbd(xs, backend.domid, fe.domid, image);
        const blk = await Blkfront.connect({ hv: fe.hv, xs: fe.xs, domid: fe.domid, devid: DEVID });
        const how = persistent ? 'persistent grants' : 'grant copy';
        progress(`${how}: ${blk.info.segmentsPerRequest} segments per request`);
        await viaBlkfront(blk); // warm-up: grants, pages, JIT
        const got = await viaBlkfront(blk);
        out.push(
          result(`seq write 64 KiB, QD32 (${how})`, got.seqWrite, 'MB/s', base.seqWrite, '>= 0.5x'),
          result(`seq read 64 KiB, QD32 (${how})`, got.seqRead, 'MB/s', base.seqRead, '>= 0.5x'),
          result(`random write 4 KiB, QD32 (${how})`, got.randWrite, 'IOPS', base.randWrite, null),
          result(`random read 4 KiB, QD32 (${how})`, got.randRead, 'IOPS', base.randRead, null),
        );
        await blk.close();
        fe.xs.close();
        await fe.hv.close();
      }
      return out;
    } finally {
      xs.close();
      await dom0.close();
      execFileSync(process.execPath, [XENBOX, 'down', '--run-dir', runDir], { stdio: 'ignore' });
    }
  },
};
