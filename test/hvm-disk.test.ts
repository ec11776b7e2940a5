/**
 * An HVM guest's disks end to end: `disk=` entries become virtio-blk devices
 * in its `<guest>-dm` stub domain, each reaching its image through the stub
 * domain's blkfront → blkback; Debian's unmodified U-Boot scans them, lists
 * and loads a file from a FAT image made with mkfs.vfat/mcopy, writes one
 * back (checked on the host with mtools), and cannot write the read-only
 * CD-ROM (`hdc:cdrom,r`), and every virtio slot filled (six more disks, each
 * read 8 MiB at a time: the stub domain's memory must hold eight blkfronts'
 * page pools).  One U-Boot boot serves every check.
 *
 * Also: the stub domain's DMA path (foreign memory) reaches its own target
 * and nothing else — the hypervisor refuses another domain's memory.
 */
import { crc32 } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_RAM_BASE, XenError, runDirLayout } from '@xenbox/abi';
import { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import { ForeignMemory } from '../packages/stubdom/dist/guest-memory.js';
import { BLKFRONT_MEMKB } from '../packages/dom0/dist/libxl/hvm-disks.js';
import { TestStack } from './helpers/stack.js';
import { UBOOT, attachUboot, fatImage as makeFatImage, haveCommand, until, type UbootConsole } from './helpers/uboot.js';

const have = haveCommand;
const ready = existsSync(UBOOT) && have('mkfs.vfat') && have('mcopy') && have('mtype');

const HELLO = 'Hello from a FAT disk via virtio-blk, blkfront and blkback!\n';
const CD_NOTE = 'read-only media\n';
/** 1 MiB of pseudo-random bytes: U-Boot loads it and its crc32 must be the host's. */
const BIG = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (Math.imul(i, 2654435761) >>> 13) & 0xff));
let stack: TestStack;
let dom0: HypervisorConnection;
let disk = '';
let cdrom = '';
/** Six more raw disks, 8 MiB each, sector 0 marked with its number: with hda and the CD-ROM every virtio slot is used. */
const RAW = 6;
const raws: string[] = [];
const consoles: UbootConsole[] = [];

const fatImage = (path: string, mib: number, label: string, files: Record<string, string | Buffer>): void => makeFatImage(path, mib, label, files, stack.runDir);

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** `xl console NAME` with a pipe for the keyboard (HVM_DISK_TRACE prints what arrives, timed). */
function attach(name: string): UbootConsole {
  const con = attachUboot(stack.runDir, name, process.env.HVM_DISK_TRACE ? (t, chunk) => process.stderr.write(`[${t.toFixed(0)}] ${JSON.stringify(chunk)}\n`) : undefined);
  consoles.push(con);
  return con;
}


beforeAll(async () => {
  if (!ready) return;
  stack = await TestStack.up('hvm-disk');
  dom0 = await HypervisorConnection.connect({ runDir: stack.runDir, domid: 0, token: readFileSync(runDirLayout(stack.runDir).dom0Token, 'utf8').trim() });
  disk = join(stack.runDir, 'disk.img');
  cdrom = join(stack.runDir, 'cd.img');
  fatImage(disk, 8, 'XENBOXHD', { 'hello.txt': HELLO, 'big.bin': BIG });
  fatImage(cdrom, 2, 'XENBOXCD', { 'note.txt': CD_NOTE });
  for (let i = 0; i < RAW; i++) {
    const img = Buffer.alloc(8 << 20, 0x40 + i);
    img.write(`raw disk ${i}`, 0, 'latin1');
    raws.push(join(stack.runDir, `raw${i}.img`));
    writeFileSync(raws[i]!, img);
  }
}, 60_000);
afterAll(async () => {
  for (const c of consoles) c.close();
  await dom0?.close();
  await stack?.destroy();
}, 60_000);

describe.skipIf(!ready)('an HVM guest\'s disks as virtio-blk in its stub domain, over blkfront -> blkback (skipped without u-boot-qemu, dosfstools, mtools)', () => {
  let con: ReturnType<typeof attach>;
  let domid = 0;
  let dmDomid = 0;
  /** Type a command at the U-Boot prompt and return what it printed up to the next prompt. */
  const run = (cmd: string, ms = 20_000): Promise<string> => con.run(cmd, ms);

  it('creates the guest with a disk, six raw disks and a read-only CD-ROM; the stub domain\'s vbds connect, the guest\'s stay for PV drivers it does not have', async () => {
    const cfg = join(stack.runDir, 'ud.cfg');
    writeFileSync(cfg, [
      'name = "ud"', 'builder = "hvm"', 'memory = 128', 'boot = "cd"', 'on_poweroff = "destroy"', 'on_crash = "destroy"',
      `disk = [ "${disk},raw,hda,rw", "${cdrom},raw,hdc:cdrom,r", ${raws.map((f, i) => `"${f},raw,xvd${'bcdefg'[i]},rw"`).join(', ')} ]`,
    ].join('\n') + '\n');
    const t0 = performance.now();
    const r = await stack.xl('create', cfg);
    expect(r.code, r.stderr).toBe(0);
    const created = performance.now() - t0;
    expect(r.stderr).toMatch(/device model vbd 768 of d\d+: backend/);
    const ds = await dom0.call('sysctl.getdomaininfolist', {});
    domid = ds.find((d) => d.name === 'ud')!.domid;
    dmDomid = ds.find((d) => d.name === 'ud-dm')!.domid;
    const dmList = await stack.xl('block-list', 'ud-dm');
    expect(dmList.code, dmList.stderr).toBe(0);
    // Vdev BE handle state ...: hda = 768, hdc = 5632, both Connected (4) with the stub domain as frontend.
    expect(dmList.stdout).toMatch(new RegExp(`^768 +\\d+ +${dmDomid} +4 `, 'm'));
    expect(dmList.stdout).toMatch(new RegExp(`^5632 +\\d+ +${dmDomid} +4 `, 'm'));
    const guestList = await stack.xl('block-list', 'ud');
    expect(guestList.stdout).toMatch(new RegExp(`^768 +\\d+ +${domid} +1 `, 'm'));
    con = attach('ud');
    await until('the autoboot countdown', () => con.out().includes('Hit any key to stop autoboot'), 30_000);
    const countdown = performance.now() - t0;
    con.type('\r');
    await until('the prompt', () => /=> $/.test(con.out()));
    const info = await dom0.call('hvm.ioreq_server.info', { domid });
    console.log(`ioreqs to the countdown: ${info.syncRequests} synchronous, ${info.bufferedWrites} posted writes in ${info.bufferedBatches} batches, ${info.localReads} reads served from the mirror`);
    console.log(`HVM U-Boot with eight virtio-blk disks: xl create ${created.toFixed(0)} ms, autoboot countdown at ${countdown.toFixed(0)} ms`);
  }, 60_000);

  it('`virtio scan` / `virtio info` see the hard disks first in disk= order and the CD-ROM last (boot = "cd"), with their capacities', async () => {
    await run('virtio scan');
    const info = await run('virtio info');
    expect(info).toMatch(/Device 0: QEMU VirtIO Block Device[^]*Capacity: 8\.0 MB = 0\.0 GB \(16384 x 512\)[^]*Device 1: [^]*Device 6: [^]*Device 7: QEMU VirtIO Block Device[^]*Capacity: 2\.0 MB = 0\.0 GB \(4096 x 512\)/);
  }, 30_000);

  it('`ls virtio 0 /` lists the file with its size, and `load` + `md.b` show its bytes', async () => {
    const ls = await run('ls virtio 0 /');
    expect(ls).toMatch(new RegExp(`^ +${HELLO.length} +hello\\.txt`, 'm'));
    const load = await run('load virtio 0 0x84000000 hello.txt');
    console.log(`U-Boot: ${/\d+ bytes read in \d+ ms[^\r\n]*/.exec(load)?.[0]}`);
    expect(load).toContain(`${HELLO.length} bytes read`);
    const md = await run('md.b 0x84000000 0x20');
    const want = [...Buffer.from(HELLO).subarray(0, 0x20)].map((b) => b.toString(16).padStart(2, '0'));
    expect(md).toContain(`84000000: ${want.slice(0, 16).join(' ')}`);
    expect(md).toContain(`84000010: ${want.slice(16, 32).join(' ')}`);
    expect(md).toContain('  Hello from a FAT\r\n');
    expect(md).toContain('   disk via virtio\r\n');
  }, 30_000);

  it('loads a 1 MiB file whose crc32 in U-Boot is the host\'s', async () => {
    const load = await run('load virtio 0 0x84100000 big.bin', 60_000);
    expect(load).toContain(`${BIG.length} bytes read`);
    console.log(`U-Boot, 1 MiB through virtio-blk -> blkfront -> blkback: ${/\d+ bytes read in \d+ ms[^\r\n]*/.exec(load)?.[0]}`);
    const crc = await run(`crc32 0x84100000 ${BIG.length.toString(16)}`);
    expect(crc).toContain(`==> ${crc32(BIG).toString(16).padStart(8, '0')}`);
  }, 90_000);

  it('reads 8 MiB at once from each of the six raw disks, each its own bytes (eight blkfronts\' pools in one stub domain)', async () => {
    for (let i = 0; i < RAW; i++) {
      const r = await run(`virtio dev ${i + 1}; virtio read 0x85000000 0 4000`, 60_000);
      expect(r, `disk ${i}`).toContain('16384 blocks read: OK');
      const md = await run('md.b 0x85000000 0x10');
      expect(md, `disk ${i}`).toContain(`raw disk ${i}`);
      const tail = await run('md.b 0x857ffff0 0x10');
      expect(tail, `disk ${i}`).toContain(` ${(0x40 + i).toString(16)} ${(0x40 + i).toString(16)}`);
    }
  }, 120_000);

  it('survives a blkback restart: U-Boot\'s load waits while blkback is down, the stub domain\'s blkfront reconnects and re-issues, the bytes are right', async () => {
    const k = await stack.run('kill', 'blkback', '--hold', '1s');
    expect(k.code, k.stderr).toBe(0);
    const t0 = performance.now();
    const load = await run('load virtio 0 0x84200000 big.bin', 60_000);
    expect(load).toContain(`${BIG.length} bytes read`);
    console.log(`load across a blkback restart (held down 1 s): ${(performance.now() - t0).toFixed(0)} ms`);
    const dmLog = readFileSync(runDirLayout(stack.runDir).logFile('ud-dm'), 'utf8');
    expect(dmLog).toContain('backend lost: reconnecting');
    expect(dmLog).toContain('reconnected');
    const crc = await run(`crc32 0x84200000 ${BIG.length.toString(16)}`);
    expect(crc).toContain(`==> ${crc32(BIG).toString(16).padStart(8, '0')}`);
    await until('the stub domain\'s vbds Connected again', async () => /^768 +\d+ +\d+ +4 /m.test((await stack.xl('block-list', 'ud-dm')).stdout));
  }, 90_000);

  it('`fatwrite` writes a file through virtio-blk that mtools reads back on the host', async () => {
    const w = await run(`fatwrite virtio 0 0x84000000 copy.txt ${HELLO.length.toString(16)}`);
    expect(w).toContain(`${HELLO.length} bytes written`);
    expect(execFileSync('mtype', ['-i', disk, '::copy.txt']).toString()).toBe(HELLO);
    const ls = await run('ls virtio 0 /');
    expect(ls).toMatch(/3 file\(s\)/);
  }, 30_000);

  it('the read-only CD-ROM reads, and refuses a write (VIRTIO_BLK_S_IOERR), its image unchanged', async () => {
    expect(await run('ls virtio 7 /')).toMatch(new RegExp(`^ +${CD_NOTE.length} +note\\.txt`, 'm'));
    const before = sha(cdrom);
    const w = await run(`fatwrite virtio 7 0x84000000 copy.txt ${HELLO.length.toString(16)}`);
    expect(w).not.toContain('bytes written');
    expect(sha(cdrom)).toBe(before);
    expect(execFileSync('mdir', ['-i', cdrom, '-b', '::']).toString()).not.toContain('copy.txt');
  }, 30_000);

  it('the stub domain\'s DMA path reaches its own guest\'s memory and nothing else (the hypervisor refuses with EPERM)', async () => {
    const victim = await dom0.call('domctl.createdomain', { name: 'victim', kind: 'hvm', memkb: 4096, max_vcpus: 1 });
    const probe = await dom0.call('domctl.createdomain', { name: 'probe-dm', kind: 'stubdom', target: domid });
    const hv = await HypervisorConnection.connect({ runDir: stack.runDir, domid: probe.domid, token: probe.token });
    try {
      const own = await new ForeignMemory(hv, domid).read(BigInt(GUEST_RAM_BASE), 64);
      expect(Buffer.from(own)).toEqual(readFileSync(UBOOT).subarray(0, 64)); // U-Boot's first bytes, where the builder put them
      for (const other of [victim.domid, 0, dmDomid]) {
        const err = await new ForeignMemory(hv, other).read(BigInt(GUEST_RAM_BASE), 64).catch((e: unknown) => e);
        expect(err, `read d${other}`).toBeInstanceOf(XenError);
        expect((err as XenError).errno, `read d${other}`).toBe('EPERM');
        const werr = await new ForeignMemory(hv, other).write(BigInt(GUEST_RAM_BASE), new Uint8Array(8)).catch((e: unknown) => e);
        expect((werr as XenError).errno, `write d${other}`).toBe('EPERM');
      }
    } finally {
      await hv.close();
      await dom0.call('domctl.destroydomain', { domid: probe.domid });
      await dom0.call('domctl.destroydomain', { domid: victim.domid });
    }
  }, 30_000);

  it('with device_model_stubdomain_override = 0 the disk\'s front end is dom0 (its blkfront in the dom0 device model, dom0\'s max_mem raised for its pages), removed on destroy', async () => {
    const dom0Max = async () => (await dom0.call('domctl.getdomaininfo', { domid: 0 })).maxPages;
    const before = await dom0Max();
    const cfg = join(stack.runDir, 'u0.cfg');
    writeFileSync(cfg, ['name = "u0"', 'builder = "hvm"', 'memory = 64', 'device_model_stubdomain_override = 0', `disk = [ "${cdrom},raw,hdc:cdrom,r" ]`].join('\n') + '\n');
    const r = await stack.xl('create', cfg);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/device model vbd \d+ of d0: backend/);
    const devid = Number(/device model vbd (\d+) of d0/.exec(r.stderr)![1]);
    expect((await stack.xl('block-list', '0')).stdout).toMatch(new RegExp(`^${devid} +\\d+ +0 +4 `, 'm'));
    // Its blkfront's pages are dom0's: dom0's max_mem grows by one disk's share while it runs, and shrinks back.
    expect(await dom0Max()).toBe(before + BLKFRONT_MEMKB / 4);
    expect((await stack.xl('destroy', 'u0')).code).toBe(0);
    expect((await stack.xl('block-list', '0')).stdout).not.toMatch(new RegExp(`^${devid} `, 'm'));
    expect(await dom0Max()).toBe(before);
  }, 60_000);

  it('`poweroff` ends the guest, its stub domain and both sets of vbds', async () => {
    con.type('poweroff\r');
    await until('ud and ud-dm gone', async () => !(await dom0.call('sysctl.getdomaininfolist', {})).some((d) => d.name.startsWith('ud')));
    const xs = await XenstoreClient.connectRunDir(stack.runDir);
    const ls = (p: string) => xs.directory(p).catch(() => [] as string[]);
    try {
      // The monitor removes the devices as it destroys the domains: wait for it to finish.
      await until('no vbds of the guest or its stub domain left, front or back', async () => {
        for (const d of [domid, dmDomid]) {
          if ((await ls(`/local/domain/${d}/device/vbd`)).length) return false;
          for (const be of await ls('/local/domain')) if ((await ls(`/local/domain/${be}/backend/vbd/${d}`)).length) return false;
        }
        return true;
      }, 10_000);
    } finally {
      await xs.close();
    }
  }, 30_000);
});
