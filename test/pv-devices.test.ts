/**
 * The PV kernel's drivers against the real driver domains
 * (packages/guests/pvkernel blkfront/netfront, packages/blkback,
 * packages/netback): `xl create` with disk= and vif=, then
 *  - disktest writes a seeded pattern that this test regenerates
 *    (helpers/disk-pattern.ts) and compares byte for byte with the image;
 *  - the same through a qcow2 image made by qemu-img, which stays valid for
 *    `qemu-img check` and converts to exactly the written data;
 *  - blkback is killed in the middle of a disktest and the guest
 *    reconnects to its next incarnation, re-issues, and verifies;
 *  - a read-only disk refuses writes and the guest says so;
 *  - two guests on xenbr0 ping each other and talk UDP.
 */
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runDirLayout } from '@xenbox/abi';
import { patternSectors } from './helpers/disk-pattern.js';
import { TestStack } from './helpers/stack.js';
import { REPO, XL_BIN } from './helpers/paths.js';

const IMAGE = resolve(REPO, 'packages/guests/images/pvkernel.elf');
const haveQemuImg = spawnSync('qemu-img', ['--version']).status === 0;
const MiB = 1024 * 1024;

let stack: TestStack;
const created: string[] = [];
const consoles: ChildProcessWithoutNullStreams[] = [];

const xl = (...args: string[]) => stack.xl(...args);

function config(name: string, lines: Record<string, string | number>): string {
  const file = join(stack.runDir, `${name}.cfg`);
  const body = Object.entries({ name: `"${name}"`, type: '"pvh"', memory: 32, kernel: `"${IMAGE}"`, on_poweroff: '"destroy"', on_crash: '"preserve"', ...lines })
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n');
  writeFileSync(file, body + '\n');
  return file;
}

async function create(name: string, lines: Record<string, string | number>): Promise<void> {
  const r = await xl('create', config(name, lines));
  expect(r.code, r.stderr).toBe(0);
  created.push(name);
}

function consoleLog(name: string): string {
  const f = runDirLayout(stack.runDir).consoleLog(name);
  return existsSync(f) ? readFileSync(f, 'latin1') : '';
}

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms: number, onTimeout = () => ''): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${onTimeout()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Wait for a line matching `re` in the guest's console; the match. */
function printed(name: string, re: RegExp, ms = 60_000): Promise<RegExpExecArray> {
  return until(`${name} to print ${re}`, () => re.exec(consoleLog(name)) ?? undefined, ms, () => `; console of ${name}:\n${consoleLog(name)}`);
}

async function listed(name: string): Promise<boolean> {
  return (await xl('list')).stdout.split('\n').some((l) => l.startsWith(name + ' '));
}

function rawImage(name: string, bytes: number): string {
  const file = join(stack.runDir, name);
  writeFileSync(file, Buffer.alloc(0));
  execFileSync('truncate', ['-s', String(bytes), file]);
  return file;
}

beforeAll(async () => {
  stack = await TestStack.up('pvdev');
}, 60_000);

/** Each test's guests go when it ends, passed or not, so a failure does not load the next test. */
afterEach(async () => {
  for (const c of consoles.splice(0)) c.kill();
  for (const name of created.splice(0)) if (stack && (await listed(name))) await xl('destroy', name);
}, 60_000);

/** `xl console NAME` with a pipe for the keyboard. */
function attach(name: string): { out: () => string; type: (s: string) => void } {
  const child = spawn(process.execPath, [XL_BIN, 'console', name], { env: { ...process.env, XENBOX_RUN_DIR: stack.runDir }, stdio: 'pipe' });
  consoles.push(child);
  let text = '';
  child.stdout.on('data', (b: Buffer) => (text += b.toString('latin1')));
  return { out: () => text, type: (s) => child.stdin.write(s) };
}

/** Type a line into the shell; what came back once `want` matched. */
async function typed(con: ReturnType<typeof attach>, line: string, want: RegExp, ms = 60_000): Promise<string> {
  const from = con.out().length;
  con.type(line + '\r');
  await until(`the answer to '${line}'`, () => want.test(con.out().slice(from)), ms, () => `; xl console shows:\n${con.out().slice(from)}`);
  return con.out().slice(from);
}

afterAll(async () => {
  await stack?.destroy();
}, 60_000);

describe('blkfront and disktest', () => {
  it('disktest writes the seeded pattern to a raw image: the image holds exactly those bytes, and the rest is untouched', async () => {
    const img = rawImage('disk.raw', 8 * MiB);
    await create('pvd-raw', { disk: `[ "${img},raw,xvda,w" ]`, cmdline: '"disktest seed=7 mb=2"' });
    const m = await printed('pvd-raw', /disktest: wrote 2 MiB at [\d.]+ MB\/s, read at [\d.]+ MB\/s, verify (OK|FAILED)/, 120_000);
    console.info(`raw: ${m[0]}`);
    expect(m[1]).toBe('OK');
    await until('the guest to power off', async () => !(await listed('pvd-raw')), 20_000);
    const data = readFileSync(img);
    expect(data.subarray(0, 2 * MiB).equals(patternSectors(7n, 0n, (2 * MiB) / 512))).toBe(true);
    expect(data.subarray(2 * MiB).every((b) => b === 0)).toBe(true);
  }, 180_000);
});

describe.skipIf(!haveQemuImg)('blkfront on a qcow2 image', () => {
  it('disktest through a qcow2 image made by qemu-img: qemu-img check is clean and convert -O raw shows exactly the written data', async () => {
    const img = join(stack.runDir, 'disk.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '16M']);
    await create('pvd-qcow2', { disk: `[ "${img},qcow2,xvda,w" ]`, cmdline: '"disktest seed=11 mb=3"' });
    const m = await printed('pvd-qcow2', /disktest: wrote 3 MiB at [\d.]+ MB\/s, read at [\d.]+ MB\/s, verify (OK|FAILED)/, 120_000);
    console.info(`qcow2: ${m[0]}`);
    expect(m[1]).toBe('OK');
    await until('the guest to power off', async () => !(await listed('pvd-qcow2')), 20_000);
    const check = spawnSync('qemu-img', ['check', img], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('No errors were found on the image.');
    const raw = join(stack.runDir, 'disk-from-qcow2.raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', img, raw]);
    const data = readFileSync(raw);
    expect(data.length).toBe(16 * MiB);
    expect(data.subarray(0, 3 * MiB).equals(patternSectors(11n, 0n, (3 * MiB) / 512))).toBe(true);
    expect(data.subarray(3 * MiB).every((b) => b === 0)).toBe(true);
  }, 180_000);
});

describe('blkfront when blkback dies', () => {
  it('blkback killed in the middle of a disktest: the guest reconnects to the new blkback, re-issues, and the pattern verifies on the guest and on the host', async () => {
    const img = rawImage('kill.raw', 32 * MiB);
    const before = await stack.service('blkback');
    await create('pvd-kill', { disk: `[ "${img},raw,xvda,w" ]`, cmdline: '"disktest seed=23 mb=24"' });
    await printed('pvd-kill', /disktest: xvda, seed 23/, 60_000);
    // Let requests get in flight, then kill the driver domain under them (the write phase takes seconds).
    await new Promise((r) => setTimeout(r, 500));
    const k = await stack.run('kill', 'blkback');
    expect(k.code, k.stderr).toBe(0);
    const after = await stack.waitFor('blkback', (s) => s.state === 'ready' && s.pid !== before.pid, 20_000);
    expect(after.domid).not.toBe(before.domid);
    const m = await printed('pvd-kill', /disktest: wrote 24 MiB at [\d.]+ MB\/s, read at [\d.]+ MB\/s, verify (OK|FAILED)/, 240_000);
    console.info(`after a blkback kill: ${m[0]}`);
    const log = consoleLog('pvd-kill');
    // The backend went away during the test, not after it.
    expect(log).toMatch(/blkfront xvda: backend \/local\/domain\/\d+\/backend\/vbd\/\d+\/51712 went away with [1-9]\d* request\(s\) in flight[^]*disktest: wrote/);
    expect(log).toMatch(new RegExp(`blkfront xvda: reconnected to /local/domain/${after.domid}/backend/vbd/\\d+/51712 \\(backend domain ${after.domid}\\)`));
    expect(m[1]).toBe('OK');
    await until('the guest to power off', async () => !(await listed('pvd-kill')), 20_000);
    const data = readFileSync(img);
    expect(data.subarray(0, 24 * MiB).equals(patternSectors(23n, 0n, (24 * MiB) / 512))).toBe(true);
  }, 300_000);
});

describe('read-only disks', () => {
  it('a read-only disk refuses writes: the guest prints the error and the image is untouched', async () => {
    const img = rawImage('ro.raw', 4 * MiB);
    await create('pvd-ro', { disk: `[ "${img},raw,xvda,r" ]`, cmdline: '"disktest seed=5 mb=1"' });
    await printed('pvd-ro', /blkfront xvda: \d+ sectors of 512 bytes \(sector-size 512\), read-only/, 60_000);
    const m = await printed('pvd-ro', /disktest: write at sector 0 failed \((-\d+)\)/, 60_000);
    expect(Number(m[1])).toBe(-5); // BLKIF_RSP_ERROR -> -EIO
    await printed('pvd-ro', /disktest: FAILED writing xvda/, 10_000);
    await until('the guest to power off', async () => !(await listed('pvd-ro')), 20_000);
    expect(readFileSync(img).every((b) => b === 0)).toBe(true);
  }, 120_000);

  it('a cdrom refuses writes the same way, and the guest sees it as a read-only cdrom', async () => {
    const img = rawImage('cd.iso', 2 * MiB);
    await create('pvd-cd', { disk: `[ "${img},raw,xvdb,r,devtype=cdrom" ]`, cmdline: '"disktest dev=xvdb seed=5 mb=1"' });
    await printed('pvd-cd', /blkfront xvdb: 4096 sectors of 512 bytes \(sector-size 512\), read-only, cdrom/, 60_000);
    const m = await printed('pvd-cd', /disktest: write at sector 0 failed \((-\d+)\)/, 60_000);
    expect(Number(m[1])).toBe(-5);
    await until('the guest to power off', async () => !(await listed('pvd-cd')), 20_000);
    expect(readFileSync(img).every((b) => b === 0)).toBe(true);
  }, 120_000);
});

describe('netfront and the IP stack on xenbr0', () => {
  it('two guests ping each other (ARP, ICMP echo both ways), with Linux ping output', async () => {
    await create('pvn-a', { vif: '[ "bridge=xenbr0,mac=00:16:3e:5a:00:01" ]', cmdline: '"ip=10.0.0.1 ping 10.0.0.2 count=3 interval=300 wait=60 linger=20"' });
    await create('pvn-b', { vif: '[ "bridge=xenbr0,mac=00:16:3e:5a:00:02" ]', cmdline: '"ip=10.0.0.2 ping 10.0.0.1 count=3 interval=300 wait=60 linger=5"' });
    for (const [me, peer] of [['pvn-a', '10.0.0.2'], ['pvn-b', '10.0.0.1']] as const) {
      const sum = await printed(me, /(\d+) packets transmitted, (\d+) received, (\d+)% packet loss, time \d+ms/, 90_000);
      const rtt = await printed(me, /rtt min\/avg\/max\/mdev = [\d.]+\/[\d.]+\/[\d.]+\/[\d.]+ ms/, 10_000);
      const log = consoleLog(me);
      console.info(`${me}: ${sum[0]}; ${rtt[0]}`);
      expect(log).toContain(`PING ${peer} (${peer}) 56(84) bytes of data.`);
      expect(log).toMatch(new RegExp(`64 bytes from ${peer.replace(/\./g, '\\.')}: icmp_seq=1 ttl=64 time=[\\d.]+ ms`));
      expect(sum[1]).toBe('3');
      expect(sum[2]).toBe('3');
    }
    expect(consoleLog('pvn-a')).toMatch(/netfront vif0: mac 00:16:3e:5a:00:01, backend domain \d+/);
  }, 180_000);

  it('udp-echo answers a datagram from another guest', async () => {
    await create('pvn-echo', { vif: '[ "bridge=xenbr0,mac=00:16:3e:5a:00:03" ]', cmdline: '"ip=10.0.0.3 udp-echo port=7"' });
    await printed('pvn-echo', /udp-echo: listening on 10\.0\.0\.3 port 7/, 60_000);
    await create('pvn-udp', { vif: '[ "bridge=xenbr0,mac=00:16:3e:5a:00:04" ]', cmdline: '"ip=10.0.0.4 udp 10.0.0.3 7 hello-from-10.0.0.4"' });
    await printed('pvn-udp', /udp: reply from 10\.0\.0\.3:7: hello-from-10\.0\.0\.4/, 60_000);
  }, 120_000);

  it('netback killed while one guest pings another: both netfronts reconnect to the new netback and the pings get through again', async () => {
    await create('pvn-srv', { vif: '[ "bridge=xenbr0,mac=00:16:3e:5a:00:05" ]', cmdline: '"ip=10.0.0.5 udp-echo"' });
    await printed('pvn-srv', /udp-echo: listening on 10\.0\.0\.5/, 60_000);
    await create('pvn-cli', { vif: '[ "bridge=xenbr0,mac=00:16:3e:5a:00:06" ]', cmdline: '"ip=10.0.0.6 ping 10.0.0.5 count=30 interval=500 wait=60"' });
    await printed('pvn-cli', /icmp_seq=3 ttl=64/, 60_000);
    const before = await stack.service('netback');
    const k = await stack.run('kill', 'netback');
    expect(k.code, k.stderr).toBe(0);
    const after = await stack.waitFor('netback', (s) => s.state === 'ready' && s.pid !== before.pid, 20_000);
    for (const g of ['pvn-srv', 'pvn-cli']) await printed(g, new RegExp(`netfront vif0: reconnected to /local/domain/${after.domid}/backend/vif/\\d+/0 \\(backend domain ${after.domid}\\)`), 60_000);
    const sum = await printed('pvn-cli', /30 packets transmitted, (\d+) received/, 120_000);
    const seqs = [...consoleLog('pvn-cli').matchAll(/icmp_seq=(\d+) ttl=64/g)].map((m) => Number(m[1]));
    console.info(`ping across a netback restart: ${sum[0]}; last answered icmp_seq=${Math.max(...seqs)}`);
    expect(Math.max(...seqs)).toBe(30);
    expect(Number(sum[1])).toBeGreaterThanOrEqual(20);
  }, 240_000);
});

describe('the shell commands', () => {
  it('dd writes the pattern and reads it back with the CRC-32 the host computes; ifconfig, devices; a guest at its prompt answers pings', async () => {
    const img = rawImage('shell.raw', 4 * MiB);
    await create('pvs-sh', { disk: `[ "${img},raw,xvda,w" ]`, vif: '[ "bridge=xenbr0,mac=00:16:3e:5a:00:07" ]', cmdline: '"ip=10.0.0.7 shell"' });
    await printed('pvs-sh', /pvkernel> /, 60_000);
    const con = attach('pvs-sh');
    await typed(con, 'echo attached', /attached\r\npvkernel> /, 30_000);
    // 100 sectors: 13 segments, the last one partial, in one indirect request.
    expect(await typed(con, 'dd of=xvda seed=4 count=100 seek=8', /pvkernel> $/)).toMatch(/dd: wrote 100 sectors to xvda \(seed 4\), [\d.]+ MB\/s/);
    const want = (crc32(patternSectors(4n, 8n, 100)) >>> 0).toString(16).padStart(8, '0');
    expect(await typed(con, 'dd if=xvda count=100 skip=8', /pvkernel> $/)).toContain(`dd: read 100 sectors from xvda, crc32 ${want}`);
    expect(readFileSync(img).subarray(8 * 512, 108 * 512).equals(patternSectors(4n, 8n, 100))).toBe(true);
    expect(await typed(con, 'dd if=xvdz', /pvkernel> $/)).toContain('dd: xvdz: no such disk');
    expect(await typed(con, 'ifconfig', /pvkernel> $/)).toMatch(/eth0: mac 00:16:3e:5a:00:07 inet 10\.0\.0\.7 netmask 255\.255\.255\.0/);
    expect(await typed(con, 'devices', /pvkernel> $/)).toMatch(/vbd  xvda +devid 51712, 4\.00 MiB, rw[^]*vif  vif0 +mac 00:16:3e:5a:00:07/);
    // Sitting at its prompt, it still answers ARP and ping (the shell's input wait polls the drivers).
    await create('pvs-pinger', { vif: '[ "bridge=xenbr0,mac=00:16:3e:5a:00:08" ]', cmdline: '"ip=10.0.0.8 ping 10.0.0.7 count=2 interval=300 wait=60"' });
    const sum = await printed('pvs-pinger', /2 packets transmitted, (\d+) received/, 90_000);
    expect(sum[1]).toBe('2');
  }, 180_000);
});

describe('detaching devices', () => {
  it('xl block-detach and network-detach: the fronts say Closed and let go instead of reconnecting; xl sees the devices gone', async () => {
    const img = rawImage('detach.raw', 2 * MiB);
    await create('pvs-det', { disk: `[ "${img},raw,xvda,w" ]`, vif: '[ "bridge=xenbr0,mac=00:16:3e:5a:00:09" ]', cmdline: '"ip=10.0.0.9 shell"' });
    await printed('pvs-det', /pvkernel> /, 60_000);
    const b = await xl('block-detach', 'pvs-det', 'xvda');
    expect(b.code, b.stderr).toBe(0);
    await printed('pvs-det', /blkfront xvda: detached by the toolstack/, 30_000);
    const n = await xl('network-detach', 'pvs-det', '0');
    expect(n.code, n.stderr).toBe(0);
    await printed('pvs-det', /netfront vif0: detached by the toolstack/, 30_000);
    expect((await xl('block-list', 'pvs-det')).stdout).not.toMatch(/^51712 /m);
    expect((await xl('network-list', 'pvs-det')).stdout.trim().split('\n').length).toBe(1); // the header only
    expect(consoleLog('pvs-det')).not.toMatch(/reconnect/);
  }, 120_000);
});

describe('the examples', () => {
  it('examples/two-guests: b pings a four times and gets four answers', async () => {
    for (const g of ['a', 'b']) {
      const r = await xl('create', resolve(REPO, `examples/two-guests/${g}.cfg`));
      expect(r.code, r.stderr).toBe(0);
      created.push(`pvk-${g}`);
    }
    const sum = await printed('pvk-b', /4 packets transmitted, (\d+) received/, 90_000);
    expect(sum[1]).toBe('4');
    await printed('pvk-b', /pvkernel> /, 20_000);
  }, 150_000);
});
