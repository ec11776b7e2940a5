/**
 * Creating a guest from its DomainConfig: libxl_domain_create_new() for the
 * guests xenbox runs today (PVH with PV disks and nics; HVM with its device model,
 * createHvmGuest below and hvm-builder.ts), step by step:
 *
 *   compute the image (kernel ELF + device tree) -> createdomain (RAM)
 *   -> write the image with foreign memory -> vCPU 0's start context
 *   -> pool, affinity, weight/cap, vCPUs online (domain-sched.ts)
 *   -> /local/domain/<domid> in xenstore -> unpause
 *
 * Anything that fails after createdomain destroys the half-built domain, so
 * nothing is left behind (libxl's domcreate_complete error path).
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { XenError, type DomId, type VcpuStartMode } from '@xenbox/abi';
import type { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import type { DomainConfig } from '../xlcfg/domain-config.js';
import { makeDomainDirectory, releaseDomain } from './domain-xenstore.js';
import { removeAllDevices } from './device.js';
import { writeMemoryNodes } from './domain-memory.js';
import { removeUserdata, storeUserdata } from './userdata.js';
import { addDisk, checkDisk } from './device-vbd.js';
import { addNic, withMacs } from './device-vif.js';
import { applySchedParams } from './domain-sched.js';
import { buildDomainRings } from './domain-rings.js';
import { pageWrites, pvhGuestImage, type ImageChunk } from './guest-image.js';
import { describeVnc } from './hvm-vnc.js';
import { firmwarePath, hvmGuestImage, readFirmware, removeDeviceModelDevices, spawnDeviceModel, stopDeviceModel } from './hvm-builder.js';
import { addGuestNics } from './hvm-nics.js';
import { addGuestDisks, virtioDiskOrder } from './hvm-disks.js';

export interface CreateDeps {
  hv: HypervisorConnection;
  xs: XenstoreClient | null;
  /** The stack's run dir: HVM guests' device models are started there (hvm-builder.ts). */
  runDir?: string;
  /** Progress lines for the user (xl prints them to stderr). */
  say?: (line: string) => void;
}

/** What xenbox cannot build yet is refused with the reason, never ignored. */
export function refuseUnsupported(cfg: DomainConfig): void {
  if (cfg.type === 'hvm') {
    return;
  }
  if (cfg.ramdisk) throw new XenError('EOPNOTSUPP', `${cfg.name}: ramdisk= is not supported by xenbox's PVH builder yet`);
  if (cfg.bootloader) throw new XenError('EOPNOTSUPP', `${cfg.name}: bootloader= (${cfg.bootloader}) is not supported: give kernel= instead`);
  if (!cfg.kernel) throw new XenError('EINVAL', `${cfg.name}: a PVH guest needs kernel= (an RV64 ELF)`);
}

/**
 * A relative kernel= is looked for in the current directory, as xl does, and
 * then beside the config file (so example configs work from anywhere).
 */
export function kernelPath(kernel: string, configDir?: string): string {
  if (isAbsolute(kernel) || !configDir || existsSync(kernel)) return kernel;
  const beside = resolve(configDir, kernel);
  return existsSync(beside) ? beside : kernel;
}

function readKernel(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new XenError('ENOENT', `kernel ${path}: ${(e as Error).message}`);
  }
}

/** XEN_DOMCTL_createdomain's arguments from the config (libxl__domain_make). */
function createDomainArgs(cfg: DomainConfig, kind: 'pvh' | 'hvm') {
  return {
    name: cfg.name,
    kind,
    memkb: cfg.memoryMiB * 1024,
    max_memkb: cfg.maxMemoryMiB * 1024,
    max_vcpus: cfg.maxVcpus,
    max_evtchn_port: cfg.maxEventChannels,
    ...(cfg.uuid ? { uuid: cfg.uuid } : {}),
    ...(cfg.maxGrantFrames ? { max_grant_frames: cfg.maxGrantFrames } : {}),
  };
}

/** Write the image into the new domain, set vCPU 0 going there, apply scheduling, make its xenstore directory. */
async function loadAndPrepare(deps: CreateDeps, domid: DomId, cfg: DomainConfig, image: { chunks: ImageChunk[]; entry: number; dtbAddr: number }, mode: VcpuStartMode): Promise<void> {
  const { hv } = deps;
  await Promise.all(pageWrites(image.chunks).map((w) => hv.call('foreign.write', { domid, ...w })));
  await hv.call('domctl.setvcpucontext', { domid, vcpu: 0, ctx: { pc: image.entry, a0: 0, a1: image.dtbAddr, mode } });
  await applySchedParams(hv, domid, cfg, deps.say);
  if (deps.xs) {
    await makeDomainDirectory(deps.xs, domid, cfg.name);
    await writeMemoryNodes(deps.xs, domid, cfg.memoryMiB * 1024, cfg.maxMemoryMiB * 1024);
  }
}

/**
 * The guest's disks and nics (libxl__add_disks, libxl__add_nics): both
 * xenstore directories of each, served by the driver domain the spec names
 * (default: the stack's blkback / netback).  The guest connects them itself
 * once it runs (its blkfront/netfront walk the xenbus handshake).
 */
async function addDevices(deps: CreateDeps, domid: DomId, cfg: DomainConfig, configDir?: string): Promise<void> {
  if (!cfg.disks.length && !cfg.nics.length) return;
  if (!deps.xs) throw new XenError('ENOTCONN', `${cfg.name}: disks and nics need xenstored, which is not reachable`);
  for (const d of cfg.disks) {
    const dev = await addDisk(deps.hv, deps.xs, domid, d, configDir);
    deps.say?.(`disk ${d.vdev}: vbd ${dev.devid}, backend d${dev.backend} (${dev.backendPath})`);
  }
  for (const [i, n] of cfg.nics.entries()) {
    const dev = await addNic(deps.hv, deps.xs, domid, n, { devid: i });
    deps.say?.(`vif ${dev.devid}: backend d${dev.backend} (${dev.backendPath})`);
  }
}

export async function createGuest(deps: CreateDeps, cfg: DomainConfig, opts: { paused?: boolean; configDir?: string } = {}): Promise<DomId> {
  refuseUnsupported(cfg);
  // MACs are chosen once and kept with the domain (userdata), so a restart can keep them.
  cfg = { ...cfg, nics: withMacs(cfg.nics) };
  if (cfg.type === 'hvm') return createHvmGuest(deps, cfg, opts);
  for (const d of cfg.disks) checkDisk(d, opts.configDir); // before anything is built
  const memBytes = cfg.memoryMiB * 1024 * 1024;
  const kernel = kernelPath(cfg.kernel!, opts.configDir);
  const image = pvhGuestImage({ kernel: readKernel(kernel), kernelPath: kernel, memBytes, vcpus: cfg.vcpus, cmdline: cfg.cmdline });
  const { hv } = deps;
  const created = await hv.call('domctl.createdomain', createDomainArgs(cfg, 'pvh'));
  const domid = created.domid;
  try {
    deps.say?.(`domainbuilder: ${kernel}: entry 0x${image.entry.toString(16)}, device tree at 0x${image.dtbAddr.toString(16)}`);
    await loadAndPrepare(deps, domid, cfg, image, 'S');
    await buildDomainRings(hv, deps.xs, { domid, name: cfg.name, uuid: created.uuid, memBytes, kernel, cmdline: cfg.cmdline });
    await addDevices(deps, domid, cfg, opts.configDir);
    if (deps.runDir) storeUserdata(deps.runDir, domid, cfg);
    if (!opts.paused) await hv.call('domctl.unpausedomain', { domid });
    return domid;
  } catch (e) {
    await destroyGuest(deps, domid).catch(() => undefined);
    throw e;
  }
}

/**
 * An HVM guest (libxl__build_hvm + libxl__spawn_stub_dm): firmware and device
 * tree -> createdomain (hvm) -> the image -> vCPU 0 in M-mode at the
 * firmware -> the device model (its stub domain first) serving the guest ->
 * unpause.  A failure destroys both.
 */
async function createHvmGuest(deps: CreateDeps, cfg: DomainConfig, opts: { paused?: boolean; configDir?: string }): Promise<DomId> {
  if (!deps.runDir) throw new XenError('EINVAL', `${cfg.name}: an HVM guest's device model needs the stack's run dir`);
  for (const d of cfg.disks) checkDisk(d, opts.configDir); // before anything is built
  const fw = firmwarePath(cfg.firmware, opts.configDir);
  if (fw.note) deps.say?.(`xl: note: ${fw.note}`);
  const memBytes = cfg.memoryMiB * 1024 * 1024;
  const image = hvmGuestImage({ firmware: readFirmware(fw.path), firmwarePath: fw.path, memBytes, vcpus: cfg.vcpus });
  const { hv } = deps;
  const created = await hv.call('domctl.createdomain', createDomainArgs(cfg, 'hvm'));
  const domid = created.domid;
  try {
    deps.say?.(`domainbuilder: ${fw.path} at 0x${image.entry.toString(16)} (M-mode), device tree at 0x${image.dtbAddr.toString(16)}`);
    await loadAndPrepare(deps, domid, cfg, image, 'M');
    storeUserdata(deps.runDir, domid, cfg);
    const nics = withMacs(cfg.nics);
    if (nics.length && !deps.xs) throw new XenError('ENOTCONN', `${cfg.name}: vif= needs xenstored, which is not reachable`);
    for (const dev of deps.xs ? await addGuestNics(hv, deps.xs, domid, nics) : []) deps.say?.(`vif ${dev.devid}: backend d${dev.backend} (${dev.backendPath}), emulated as virtio-net by the device model`);
    if (cfg.disks.length && !deps.xs) throw new XenError('ENOTCONN', `${cfg.name}: disk= needs xenstored, which is not reachable`);
    for (const dev of deps.xs ? await addGuestDisks(hv, deps.xs, domid, cfg.disks, opts.configDir) : []) deps.say?.(`disk vbd ${dev.devid}: backend d${dev.backend} (${dev.backendPath}), emulated as virtio-blk by the device model`);
    const dm = await spawnDeviceModel({
      hv, runDir: deps.runDir, guest: domid, guestName: cfg.name, stubdomain: cfg.deviceModelStubdomain, xs: deps.xs, nics,
      disks: virtioDiskOrder(cfg.disks, cfg.boot), ...(opts.configDir ? { configDir: opts.configDir } : {}),
      ...(cfg.stubdomainMemoryMiB ? { stubdomMemKb: cfg.stubdomainMemoryMiB * 1024 } : {}),
      ...(cfg.vnc ? { vnc: cfg.vnc } : {}),
    });
    deps.say?.(`device model: ${dm.name} (pid ${dm.pid}${dm.stubdom === null ? ', in dom0' : `, stub domain ${dm.stubdom}`})`);
    if (dm.vnc) deps.say?.(describeVnc(dm.vnc));
    for (const v of dm.vbds ?? []) deps.say?.(`device model vbd ${v.devid} of d${v.frontend}: backend d${v.backend} (${v.backendPath})`);
    for (const v of dm.vifs ?? []) deps.say?.(`device model vif ${v.devid} of d${v.frontend}: backend d${v.backend} (${v.backendPath})`);
    if (!opts.paused) await hv.call('domctl.unpausedomain', { domid });
    return domid;
  } catch (e) {
    await destroyGuest(deps, domid).catch(() => undefined);
    throw e;
  }
}

/**
 * libxl_domain_destroy (libxl__destroy_domid): the devices' xenstore
 * directories first — once the domain is gone xenstored deletes the nodes
 * it owned (its frontend directories), and the backends' would be orphaned —
 * then the guest and its device model, then its xenstore home.
 */
export async function destroyGuest(deps: CreateDeps, domid: DomId): Promise<void> {
  if (deps.xs) await removeAllDevices(deps.xs, domid);
  if (deps.xs && deps.runDir) await removeDeviceModelDevices(deps.xs, deps.runDir, domid);
  await deps.hv.call('domctl.destroydomain', { domid });
  if (deps.runDir) {
    await stopDeviceModel(deps.hv, deps.runDir, domid, deps.xs);
    removeUserdata(deps.runDir, domid);
  }
  if (deps.xs) await releaseDomain(deps.xs, domid);
}
