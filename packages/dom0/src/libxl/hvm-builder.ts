/**
 * HVM guests: the firmware image and the device model (libxl's
 * libxl__build_hvm + libxl__spawn_stub_dm / libxl__spawn_local_dm, for
 * xenbox's RISC-V `virt` machine, DESIGN §7 and §10).
 *
 * - The image: the firmware (a raw binary, Debian's U-Boot by default) at
 *   the RAM base 0x80000000 and a device tree of the virt board with its
 *   devices (UART, test device, virtio-mmio slots) where QEMU puts it, at the
 *   top of RAM (riscv-platform.md §3.2); vCPU 0 starts there in M-mode with
 *   a0 = hartid, a1 = the device tree, as QEMU's reset vector hands over.
 * - The device model: a `<guest>-dm` stub domain (domctl.createdomain kind
 *   'stubdom', target = the guest) running packages/stubdom, or with
 *   device_model_stubdomain_override = 0 the same program as a dom0 process.
 *   It is started before the guest is unpaused and says "ready" on a pipe
 *   once it serves the guest's ioreqs.  Its pid and domain are recorded in
 *   $RUN_DIR/dm/<domid>.json so the monitor can notice its death (the guest
 *   then follows on_crash) and destroyGuest can end it with the guest.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ENV_DM_TARGET, ENV_DM_VBDS, ENV_DM_VIFS, ENV_DOMID, ENV_NAME, ENV_RUN_DIR, ENV_TOKEN, ENV_XS_SECRET, GUEST_RAM_BASE, PROCESS_DEFAULT_MAX_MEM_KB, XenError, runDirLayout, type DomId,
} from '@xenbox/abi';
import type { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import { dtbAddress, virtDeviceTree } from '@xenbox/hypervisor/guest-image';
import { ENV_SUPERVISED } from '../supervisor/run-dir.js';
import type { GuestImage, ImageChunk } from './guest-image.js';
import { vncEndpoint, vncEnv } from './hvm-vnc.js';
import type { VncConfig } from '../xlcfg/vnc-config.js';
import type { VncEndpoint } from '@xenbox/abi';
import type { NicSpec } from '../xlcfg/vif-spec.js';
import type { DeviceRef } from './device.js';
import { introduceDomain, releaseDomain } from './domain-xenstore.js';
import { NETFRONT_MEMKB, addDeviceModelNics, removeDeviceModelNics } from './hvm-nics.js';
import { BLKFRONT_MEMKB, addDeviceModelDisks, adjustMaxMem, removeDeviceModelDisks } from './hvm-disks.js';
import type { DiskSpec } from '../xlcfg/disk-spec.js';

/** xenbox's HVM firmware: Debian's u-boot-qemu build for QEMU virt, M-mode (riscv-platform.md §3.1). */
export const DEFAULT_HVM_FIRMWARE = '/usr/lib/u-boot/qemu-riscv64/u-boot.bin';
/** xl.cfg firmware= names that mean "the default firmware" (there is no BIOS/OVMF for RISC-V here). */
const FIRMWARE_NAMES = ['bios', 'seabios', 'rombios', 'uefi', 'ovmf'];
/** How long a device model may take to start serving. */
export const DM_READY_TIMEOUT_MS = 15_000;

/** The firmware file for firmware= (absent or a legacy name: the default; a relative path is looked for beside the config). */
export function firmwarePath(firmware: string | undefined, configDir?: string): { path: string; note?: string } {
  if (firmware === undefined) return { path: DEFAULT_HVM_FIRMWARE };
  if (FIRMWARE_NAMES.includes(firmware)) return { path: DEFAULT_HVM_FIRMWARE, note: `firmware "${firmware}": xenbox's RISC-V HVM firmware is U-Boot (${DEFAULT_HVM_FIRMWARE})` };
  if (firmware.startsWith('/') || !configDir || existsSync(firmware)) return { path: firmware };
  const beside = resolve(configDir, firmware);
  return { path: existsSync(beside) ? beside : firmware };
}

export function readFirmware(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const hint = path === DEFAULT_HVM_FIRMWARE ? ' (install Debian\'s u-boot-qemu package, or give firmware=)' : '';
    throw new XenError('ENOENT', `firmware ${path}: ${(e as Error).message}${hint}`);
  }
}

/** The memory image of an HVM guest: firmware at the RAM base, the virt device tree at the top of RAM. */
export function hvmGuestImage(input: { firmware: Uint8Array; firmwarePath: string; memBytes: number; vcpus: number }): GuestImage {
  const dtb = virtDeviceTree({ memBytes: input.memBytes, harts: input.vcpus, devices: true });
  const dtbAddr = dtbAddress(input.memBytes, dtb.length);
  const fwEnd = GUEST_RAM_BASE + input.firmware.length;
  if (fwEnd > dtbAddr) {
    throw new XenError('ENOMEM', `${input.firmwarePath} (${input.firmware.length} bytes) reaches 0x${fwEnd.toString(16)}, over the device tree at 0x${dtbAddr.toString(16)}: raise memory=`);
  }
  const chunks: ImageChunk[] = [
    { gpa: GUEST_RAM_BASE, data: input.firmware },
    { gpa: dtbAddr, data: dtb },
  ];
  return { chunks, entry: GUEST_RAM_BASE, dtbAddr, dtbSize: dtb.length };
}

/** What the toolstack remembers of a guest's device model. */
export interface DeviceModelRecord {
  pid: number;
  /** The stub domain's domid, or null for a dom0-hosted device model. */
  stubdom: DomId | null;
  name: string;
  /** Where its VNC console listens (vnc = 1). */
  vnc?: VncEndpoint;
  /** Its own vifs, the emulated NICs' way to netback (hvm-nics.ts), in virtio-mmio order. */
  vifs?: DeviceRef[];
  /** Its own vbds, the emulated disks' way to blkback (hvm-disks.ts), in virtio-mmio order. */
  vbds?: DeviceRef[];
  /** KiB added to dom0's max_mem for a dom0-hosted device model's blkfronts (hvm-disks.ts adjustMaxMem), given back when it stops. */
  dom0MemKb?: number;
}

const dmDir = (runDir: string): string => join(runDir, 'dm');
const dmFile = (runDir: string, guest: DomId): string => join(dmDir(runDir), `${guest}.json`);
const STUBDOM_MAIN = (): string => fileURLToPath(import.meta.resolve('@xenbox/stubdom/main'));

export function deviceModelOf(runDir: string, guest: DomId): DeviceModelRecord | null {
  try {
    return JSON.parse(readFileSync(dmFile(runDir, guest), 'utf8')) as DeviceModelRecord;
  } catch {
    return null;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface SpawnDmOptions {
  hv: HypervisorConnection;
  runDir: string;
  guest: DomId;
  guestName: string;
  /** Own stub domain (default) or a dom0 process (device_model_stubdomain_override = 0). */
  stubdomain: boolean;
  stubdomMemKb?: number;
  /** xl.cfg vnc = 1 and its keys: the device model serves the console over VNC too. */
  vnc?: VncConfig;
  /** xenstored: the stub domain is introduced to it, and given its vifs. */
  xs?: XenstoreClient | null;
  /** The guest's vif= entries (MACs fixed): the device model gets a vif for each (hvm-nics.ts). */
  nics?: NicSpec[];
  /** The guest's disks in virtio order (hvm-disks.ts virtioDiskOrder): the device model gets a vbd for each. */
  disks?: DiskSpec[];
  /** Where relative disk targets are looked for. */
  configDir?: string;
}

/** A stub domain's memory unless stubdomain_memory= says: a process domain's default, plus each NIC's netfront pages and each disk's blkfront pages. */
function stubdomDefaultMemKb(o: SpawnDmOptions): number {
  return PROCESS_DEFAULT_MAX_MEM_KB + (o.nics?.length ?? 0) * NETFRONT_MEMKB + (o.disks?.length ?? 0) * BLKFRONT_MEMKB;
}

/**
 * Start the guest's device model and wait until it serves the guest's ioreqs.
 * On failure nothing is left: the process is killed and its domain destroyed.
 */
export async function spawnDeviceModel(o: SpawnDmOptions): Promise<DeviceModelRecord> {
  const name = `${o.guestName}-dm`;
  let stubdom: DomId | null = null;
  let token: string;
  if (o.stubdomain) {
    const d = await o.hv.call('domctl.createdomain', { name, kind: 'stubdom', target: o.guest, max_memkb: o.stubdomMemKb ?? stubdomDefaultMemKb(o) });
    stubdom = d.domid;
    token = d.token;
  } else {
    token = `@${runDirLayout(o.runDir).dom0Token}`;
  }
  let xsSecret: string | undefined;
  let vifs: DeviceRef[] = [];
  let vbds: DeviceRef[] = [];
  let dom0MemKb = 0;
  try {
    if (o.xs && stubdom !== null) xsSecret = await introduceDomain(o.xs, stubdom, name);
    if (o.nics?.length) {
      if (!o.xs) throw new XenError('ENOTCONN', `${o.guestName}: vif= needs xenstored, which is not reachable`);
      vifs = await addDeviceModelNics(o.hv, o.xs, stubdom ?? 0, o.nics);
    }
    if (o.disks?.length) {
      if (!o.xs) throw new XenError('ENOTCONN', `${o.guestName}: disk= needs xenstored, which is not reachable`);
      vbds = await addDeviceModelDisks(o.hv, o.xs, stubdom ?? 0, o.disks, o.configDir);
      if (stubdom === null) {
        await adjustMaxMem(o.hv, 0, vbds.length * BLKFRONT_MEMKB);
        dom0MemKb = vbds.length * BLKFRONT_MEMKB;
      }
    }
  } catch (e) {
    await forgetDeviceModelDomain(o.hv, o.xs, stubdom, { vifs, vbds, dom0MemKb });
    throw e;
  }
  const logs = runDirLayout(o.runDir).logs;
  mkdirSync(logs, { recursive: true, mode: 0o700 });
  const out = openSync(join(logs, `${name}.out`), 'a', 0o600);
  const child = spawn(process.execPath, [STUBDOM_MAIN()], {
    detached: true,
    stdio: ['ignore', out, out, 'pipe'],
    env: {
      ...process.env,
      [ENV_RUN_DIR]: o.runDir,
      [ENV_DOMID]: String(stubdom ?? 0),
      [ENV_TOKEN]: token,
      [ENV_NAME]: name,
      [ENV_DM_TARGET]: String(o.guest),
      ...vncEnv(o.vnc, o.guestName),
      [ENV_DM_VBDS]: vbds.map((v) => v.devid).join(','),
      [ENV_DM_VIFS]: vifs.map((v) => v.devid).join(','),
      ...(xsSecret ? { [ENV_XS_SECRET]: xsSecret } : {}),
      // Marked like the supervisor's children, so `xenbox down` finds it.
      [ENV_SUPERVISED]: resolve(o.runDir),
    },
  });
  closeSync(out);
  let readyText = '';
  try {
    await new Promise<void>((res, rej) => {
      const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
      let text = '';
      const timer = setTimeout(() => rej(new XenError('ETIMEDOUT', `${name} did not start serving within ${DM_READY_TIMEOUT_MS} ms (see ${join(logs, name)}.log)`)), DM_READY_TIMEOUT_MS);
      pipe?.on('data', (b: Buffer) => {
        text += b.toString();
        readyText = text;
        if (text.includes('ready\n')) {
          clearTimeout(timer);
          res();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        rej(new XenError('EIO', `${name} exited (${signal ?? `code ${code}`}) before it served the guest (see ${join(logs, name)}.out and .log)`));
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    await forgetDeviceModelDomain(o.hv, o.xs, stubdom, { vifs, vbds, dom0MemKb });
    throw e;
  }
  (child.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy();
  child.removeAllListeners('exit');
  child.unref();
  const rec: DeviceModelRecord = { pid: child.pid!, stubdom, name, ...vncEndpoint(readyText), ...(vifs.length ? { vifs } : {}), ...(vbds.length ? { vbds } : {}), ...(dom0MemKb ? { dom0MemKb } : {}) };
  mkdirSync(dmDir(o.runDir), { recursive: true, mode: 0o700 });
  writeFileSync(dmFile(o.runDir, o.guest), JSON.stringify(rec) + '\n', { mode: 0o600 });
  return rec;
}

/** The device model has died while its guest lives (the monitor then crashes the guest: on_crash). */
export function deviceModelDied(runDir: string, guest: DomId): DeviceModelRecord | null {
  const rec = deviceModelOf(runDir, guest);
  return rec && !isAlive(rec.pid) ? rec : null;
}

/** Its vifs and vbds, its stub domain and that domain's xenstore home go, dom0's memory for it comes back (each step tolerates what is already gone). */
async function forgetDeviceModelDomain(
  hv: HypervisorConnection, xs: XenstoreClient | null | undefined, stubdom: DomId | null,
  own: { vifs?: DeviceRef[]; vbds?: DeviceRef[]; dom0MemKb?: number },
): Promise<void> {
  if (xs) await removeDeviceModelNics(xs, own.vifs ?? []);
  if (xs) await removeDeviceModelDisks(xs, own.vbds ?? []);
  if (own.dom0MemKb) await adjustMaxMem(hv, 0, -own.dom0MemKb).catch(() => undefined);
  if (stubdom === null) return;
  await hv.call('domctl.destroydomain', { domid: stubdom }).catch(() => undefined);
  if (xs) await releaseDomain(xs, stubdom).catch(() => undefined);
}

/**
 * Remove the device model's vifs while its frontend directories still exist
 * (libxl_domain_destroy removes devices before the domains: the guest's
 * destruction takes its stub domain along, and xenstored then drops the
 * stub domain's nodes).
 */
export async function removeDeviceModelDevices(xs: XenstoreClient, runDir: string, guest: DomId): Promise<void> {
  const rec = deviceModelOf(runDir, guest);
  if (rec?.vifs) await removeDeviceModelNics(xs, rec.vifs);
  if (rec?.vbds) await removeDeviceModelDisks(xs, rec.vbds);
}

/** End a guest's device model: after the guest is destroyed, its stub domain goes and the process with it. */
export async function stopDeviceModel(hv: HypervisorConnection, runDir: string, guest: DomId, xs?: XenstoreClient | null): Promise<void> {
  const rec = deviceModelOf(runDir, guest);
  if (!rec) return;
  await forgetDeviceModelDomain(hv, xs, rec.stubdom, rec);
  if (isAlive(rec.pid)) {
    try {
      process.kill(rec.pid, 'SIGTERM');
    } catch {
      // Gone meanwhile.
    }
  }
  rmSync(dmFile(runDir, guest), { force: true });
}
