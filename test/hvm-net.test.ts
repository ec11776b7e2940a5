/**
 * An HVM guest's vif= end to end: Debian's unmodified U-Boot drives the
 * virtio-net its stub domain emulates; the stub domain's netfront carries
 * the frames to netback's xenbr0, where a PV kernel answers.
 *
 *   U-Boot virtio-net driver -> virtio-mmio ioreqs + DMA (stubdom) -> Netfront
 *   (in <guest>-dm) -> netback xenbr0 -> the PV kernel's netfront
 *
 * Two U-Boot boots serve the whole file (they are the slow part).  With a
 * stub domain: ping, the xl network-list views, netback's pcap read by
 * tshark, netback killed and U-Boot pinging again through the restarted one,
 * the device model killed and no vif left behind.  With the device model in
 * dom0: ping through dom0's vif, xl destroy takes it away.  Last, the stack
 * goes down under a running HVM guest with a NIC and nothing stays behind.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XenstoreClient } from '@xenbox/libxen';
import { REPO, tempRunDir } from './helpers/paths.js';
import { TestStack } from './helpers/stack.js';
import { UBOOT, attachUboot, consoleText, until, type UbootConsole } from './helpers/uboot.js';
import { leftoverProcesses } from '@xenbox/dom0';

const PVKERNEL = resolve(REPO, 'packages/guests/images/pvkernel.elf');
const haveUboot = existsSync(UBOOT);
const haveTshark = spawnSync('tshark', ['--version']).status === 0;
const PEER_MAC = '00:16:3e:7b:00:01';
const UBOOT_MAC = '00:16:3e:7b:00:02';
/** A second NIC: U-Boot's eth1, the second virtio slot from the top. */
const UBOOT_MAC1 = '00:16:3e:7b:00:04';

let stack: TestStack;
let tmp: string | null = null;
let captures = '';
let xs: XenstoreClient | null = null;
const consoles: UbootConsole[] = [];
const xl = (...args: string[]) => stack.xl(...args);

const consoleLog = (name: string): string => consoleText(stack.runDir, name);


/** `xl console NAME` with a pipe for the keyboard. */
function attach(name: string): UbootConsole {
  const con = attachUboot(stack.runDir, name);
  consoles.push(con);
  return con;
}

/** Type a U-Boot command; its output once the prompt is back. */
const run = (con: UbootConsole, line: string, ms = 30_000): Promise<string> => con.run(line, ms);

function writeConfig(name: string, lines: Record<string, string | number>): string {
  const file = join(stack.runDir, `${name}.cfg`);
  writeFileSync(file, Object.entries({ name: `"${name}"`, ...lines }).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');
  return file;
}

/** The vif backend directories netback has (domid/devid pairs), from xenstore. */
async function netbackVifs(): Promise<string[]> {
  const nb = (await stack.service('netback')).domid!;
  const base = `/local/domain/${nb}/backend/vif`;
  const out: string[] = [];
  for (const fe of await xs!.directory(base).catch(() => [] as string[])) {
    for (const id of await xs!.directory(`${base}/${fe}`).catch(() => [] as string[])) out.push(`${fe}/${id}`);
  }
  return out;
}

beforeAll(async () => {
  if (!haveUboot) return;
  // netback on xenbr0 with a capture of the bridge (docs/netback.md, pcapDir), as test/pv-pcap.test.ts.
  tmp = tempRunDir('hvmnetcfg');
  captures = join(tmp, 'captures');
  const cfg = join(tmp, 'stack.json');
  writeFileSync(cfg, JSON.stringify({ autostart: null, services: [{ name: 'netback', kind: 'netback', args: { bridges: ['xenbr0'], pcapDir: captures } }, { name: 'blkback', kind: 'blkback' }] }));
  stack = await TestStack.up('hvmnet', ['--config', cfg]);
  xs = await XenstoreClient.connectRunDir(stack.runDir);
}, 60_000);

afterAll(async () => {
  for (const c of consoles) c.close();
  xs?.close();
  await stack?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!haveUboot)(`U-Boot (${UBOOT}) on an emulated virtio-net, pinging a PV kernel across xenbr0`, () => {
  let con: ReturnType<typeof attach>;
  let stubdom = 0;
  let guest = 0;
  let dmPid = 0;

  it('U-Boot pings the PV kernel: "host 10.0.3.1 is alive"', async () => {
    const peer = await xl('create', writeConfig('peer', { type: '"pvh"', kernel: `"${PVKERNEL}"`, memory: 32, vif: `[ "bridge=xenbr0,mac=${PEER_MAC}" ]`, cmdline: '"ip=10.0.3.1 udp-echo"', on_crash: '"preserve"' }));
    expect(peer.code, peer.stderr).toBe(0);
    const disk = join(stack.runDir, 'unet.raw');
    writeFileSync(disk, Buffer.alloc(1024 * 1024));
    const r = await xl('create', writeConfig('unet', {
      builder: '"hvm"', memory: 128, disk: `[ "${disk},raw,xvda,w" ]`,
      vif: `[ "bridge=xenbr0,mac=${UBOOT_MAC}", "bridge=xenbr0,mac=${UBOOT_MAC1}" ]`, on_poweroff: '"destroy"', on_crash: '"destroy"',
    }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/vif 0: backend d\d+ .*emulated as virtio-net/);
    const dmVif = /device model vif 0 of d(\d+): backend d\d+/.exec(r.stderr);
    expect(dmVif, r.stderr).not.toBeNull();
    stubdom = Number(dmVif![1]);
    dmPid = Number(/device model: unet-dm \(pid (\d+)/.exec(r.stderr)![1]);
    guest = Number((await xl('domid', 'unet')).stdout.trim());
    await until('the PV peer listening', () => /udp-echo: listening on 10\.0\.3\.1/.test(consoleLog('peer')), 60_000, () => consoleLog('peer'));
    con = attach('unet');
    await until('the autoboot countdown', () => consoleLog('unet').includes('Hit any key to stop autoboot'), 60_000, () => consoleLog('unet'));
    con.type('\r');
    await until('the prompt', () => /=> $/.test(con.out()), 30_000, () => con.out());
    // Disks first in the virtio order (virtio 0 is the disk), then both NICs in vif= order, with the vifs' MACs in their config space.
    expect(await run(con, 'virtio info')).toMatch(/Device 0: QEMU VirtIO Block Device/);
    expect(consoleLog('unet')).toMatch(/Net:\s+eth0: virtio-net#\d+, eth1: virtio-net#\d+/);
    const env = await run(con, 'printenv ethaddr eth1addr');
    expect(env).toContain(`ethaddr=${UBOOT_MAC}`);
    expect(env).toContain(`eth1addr=${UBOOT_MAC1}`);
    await run(con, 'setenv ipaddr 10.0.3.2; setenv netmask 255.255.255.0');
    const t0 = performance.now();
    const out = await run(con, 'ping 10.0.3.1');
    console.info(`U-Boot ping through the stub domain's netfront: ${(performance.now() - t0).toFixed(0)} ms`);
    expect(out).toContain('host 10.0.3.1 is alive');
  }, 120_000);

  it('xl network-list: the guest\'s own vif waits for PV drivers it does not have (Initialising); the stub domain\'s copy is Connected', async () => {
    const g = await xl('network-list', 'unet');
    expect(g.code, g.stderr).toBe(0);
    const grow = g.stdout.split('\n')[1]!.trim().split(/\s+/);
    expect(grow.slice(0, 5)).toEqual(['0', expect.stringMatching(/^\d+$/), UBOOT_MAC, '0', '1']);
    const d = await xl('network-list', 'unet-dm');
    expect(d.code, d.stderr).toBe(0);
    const drow = d.stdout.split('\n')[1]!.trim().split(/\s+/);
    expect(drow.slice(0, 5)).toEqual(['0', grow[1], UBOOT_MAC, '0', '4']);
    expect(drow.at(-1)).toBe(`/local/domain/${grow[1]}/backend/vif/${stubdom}/0`);
    expect(d.stdout.split('\n')[2]!.trim().split(/\s+/).slice(0, 5)).toEqual(['1', grow[1], UBOOT_MAC1, '1', '4']);
    expect(await netbackVifs()).toEqual(expect.arrayContaining([`${guest}/0`, `${guest}/1`, `${stubdom}/0`, `${stubdom}/1`]));
  }, 30_000);

  it.skipIf(!haveTshark)("netback's pcap of xenbr0 shows U-Boot's ARP and its echo request, and the PV kernel's reply", async () => {
    const file = join(captures, 'xenbr0.pcap');
    const arp = spawnSync('tshark', ['-r', file, '-Y', `arp && eth.src == ${UBOOT_MAC}`, '-T', 'fields', '-e', 'arp.opcode', '-e', 'arp.dst.proto_ipv4'], { encoding: 'utf8' });
    expect(arp.status, arp.stderr).toBe(0);
    expect(arp.stdout.split('\n')).toContain('1\t10.0.3.1');
    const icmp = spawnSync('tshark', ['-r', file, '-Y', 'icmp', '-T', 'fields', '-e', 'eth.src', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type'], { encoding: 'utf8' });
    expect(icmp.status, icmp.stderr).toBe(0);
    const rows = icmp.stdout.trim().split('\n');
    expect(rows).toContain(`${UBOOT_MAC}\t10.0.3.2\t10.0.3.1\t8`);
    expect(rows).toContain(`${PEER_MAC}\t10.0.3.1\t10.0.3.2\t0`);
  }, 30_000);

  it('netback killed: the stub domain\'s netfront reconnects to the new one by itself, and U-Boot\'s next ping is answered', async () => {
    const before = await stack.service('netback');
    const k = await stack.run('kill', 'netback');
    expect(k.code, k.stderr).toBe(0);
    const after = await stack.waitFor('netback', (s) => s.state === 'ready' && s.pid !== before.pid, 20_000);
    await until('the stub domain\'s vif connected to the new netback', async () => {
      const d = await xl('network-list', 'unet-dm');
      const row = d.stdout.split('\n')[1]?.trim().split(/\s+/) ?? [];
      return row[1] === String(after.domid) && row[4] === '4';
    }, 30_000);
    let out = '';
    let tries = 0;
    // The PV peer reconnects too; allow U-Boot another try while it does.
    while (tries < 3 && !out.includes('is alive')) {
      tries++;
      out = await run(con, 'ping 10.0.3.1');
    }
    console.info(`U-Boot ping after netback restart: answered on try ${tries}`);
    expect(out).toContain('host 10.0.3.1 is alive');
  }, 90_000);

  it('its device model killed: the guest crashes (on_crash destroy) and its vif and the stub domain\'s go: nothing left in netback', async () => {
    process.kill(dmPid, 'SIGKILL');
    await until('unet and unet-dm gone', async () => !(await xl('list')).stdout.includes('unet'), 20_000);
    const left = await netbackVifs();
    expect(left.filter((x) => x.startsWith(`${guest}/`) || x.startsWith(`${stubdom}/`))).toEqual([]);
    expect(left.length).toBe(1); // the peer's
  }, 30_000);

  it('with device_model_stubdomain_override = 0 the NIC\'s netfront is in dom0 (xl network-list 0), U-Boot pings the same way, and xl destroy takes dom0\'s vif away', async () => {
    const before = await netbackVifs();
    const r = await xl('create', writeConfig('unet0', { builder: '"hvm"', memory: 128, device_model_stubdomain_override: 0, vif: '[ "bridge=xenbr0,mac=00:16:3e:7b:00:03" ]', on_poweroff: '"destroy"', on_crash: '"destroy"' }));
    expect(r.code, r.stderr).toBe(0);
    const dmVif = /device model vif (\d+) of d0: backend d\d+/.exec(r.stderr);
    expect(dmVif, r.stderr).not.toBeNull();
    const row = (await xl('network-list', '0')).stdout.split('\n').find((l) => l.includes('00:16:3e:7b:00:03'));
    expect(row?.trim().split(/\s+/)[0]).toBe(dmVif![1]);
    const c0 = attach('unet0');
    await until('the autoboot countdown', () => consoleLog('unet0').includes('Hit any key to stop autoboot'), 60_000, () => consoleLog('unet0'));
    c0.type('\r');
    await until('the prompt', () => /=> $/.test(c0.out()), 30_000, () => c0.out());
    const out = await run(c0, 'setenv ipaddr 10.0.3.3; setenv netmask 255.255.255.0; ping 10.0.3.1');
    expect(out).toContain('host 10.0.3.1 is alive');
    expect((await xl('destroy', 'unet0')).code).toBe(0);
    expect((await xl('network-list', '0')).stdout).not.toContain('00:16:3e:7b:00:03');
    expect(await netbackVifs()).toEqual(before);
    expect((await xl('destroy', 'peer')).code).toBe(0);
  }, 90_000);

  it('xenbox down while an HVM guest\'s NIC is connected leaves no device model behind (its netfront close does not wait for a dead xenstored)', async () => {
    expect((await xl('create', writeConfig('unet-down', { builder: '"hvm"', memory: 128, vif: '[ "bridge=xenbr0" ]', on_crash: '"destroy"' }))).code).toBe(0);
    await until('its NIC connected', async () => (await xl('network-list', 'unet-down-dm')).stdout.split('\n')[1]?.trim().split(/\s+/)[4] === '4', 30_000);
    expect((await stack.run('down')).code).toBe(0);
    await until('every process of the stack gone', () => leftoverProcesses(stack.runDir).length === 0, 10_000, () => `; left: ${leftoverProcesses(stack.runDir).join(' ')}`);
  }, 60_000);
});
