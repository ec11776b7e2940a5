/**
 * Virtual block devices: a parsed disk spec (xl-disk-configuration(5)) to
 * the xenstore keys libxl writes (tools/libs/light/libxl_disk.c,
 * device_disk_add), and the `xl block-list` row (libxl_device_disk_getinfo).
 *
 * xenbox's blkback is a userspace backend serving image files, which is what
 * libxl calls backendtype "qdisk": params is "<format>:<path>".
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { XenError, vdevToNumber, type DomId } from '@xenbox/abi';
import type { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import type { DiskSpec } from '../xlcfg/disk-spec.js';
import { addDevice, listDevices, resolveBackendDomain, type DeviceRef } from './device.js';

/** The driver domain that serves disks unless a spec says backend=. */
export const DEFAULT_VBD_BACKEND = 'blkback';

/** xl resolves a relative target against its working directory; configs from elsewhere also look beside the config. */
export function diskTargetPath(target: string, configDir?: string): string {
  if (isAbsolute(target) || existsSync(target) || !configDir) return resolve(target);
  return resolve(configDir, target);
}

/** Check a disk before anything is written: the vdev names a device, the image exists and is a file. */
export function checkDisk(d: DiskSpec, configDir?: string): { devid: number; path: string | null } {
  const devid = vdevToNumber(d.vdev);
  if (devid === null) throw new XenError('EINVAL', `disk ${d.vdev}: invalid virtual disk identifier (see xen-vbd-interface(7))`);
  if (d.specification === 'virtio') throw new XenError('EOPNOTSUPP', `disk ${d.vdev}: specification=virtio is not supported by xenbox's blkback`);
  if (!d.pdevPath) {
    if (d.isCdrom) return { devid, path: null }; // an empty cdrom drive
    throw new XenError('EINVAL', `disk ${d.vdev}: no target specified`);
  }
  const path = diskTargetPath(d.pdevPath, configDir);
  if (!existsSync(path)) throw new XenError('ENOENT', `disk ${d.vdev}: ${path}: no such file`);
  if (!statSync(path).isFile()) throw new XenError('EINVAL', `disk ${d.vdev}: ${path} is not a regular file (xenbox's blkback serves image files)`);
  if (!['raw', 'qcow2', 'empty'].includes(d.format)) throw new XenError('EOPNOTSUPP', `disk ${d.vdev}: format=${d.format} is not supported (raw and qcow2 are)`);
  return { devid, path };
}

/** The backend and frontend keys of one disk (device_disk_add). */
export function vbdKeys(d: DiskSpec, devid: number, path: string | null): { backendKeys: Record<string, string>; frontendKeys: Record<string, string> } {
  const deviceType = d.isCdrom ? 'cdrom' : 'disk';
  const backendKeys: Record<string, string> = {
    params: path === null ? '' : `${d.format === 'empty' ? 'raw' : d.format}:${path}`,
    type: 'qdisk',
    dev: d.vdev,
    mode: d.readwrite && !d.isCdrom ? 'w' : 'r',
    'device-type': deviceType,
    removable: d.removable ? '1' : '0',
    bootable: '1',
    'discard-enable': d.discardEnable === false ? '0' : '1',
  };
  if (d.directIoSafe) backendKeys['direct-io-safe'] = '1';
  const frontendKeys: Record<string, string> = {
    'virtual-device': String(devid),
    'device-type': deviceType,
    trusted: d.trusted === false ? '0' : '1',
  };
  return { backendKeys, frontendKeys };
}

/** libxl_device_disk_add: find the backend domain, then write both directories. */
export async function addDisk(hv: HypervisorConnection, xs: XenstoreClient, frontend: DomId, d: DiskSpec, configDir?: string): Promise<DeviceRef> {
  const { devid, path } = checkDisk(d, configDir);
  const backend = await resolveBackendDomain(hv, d.backendDomname, DEFAULT_VBD_BACKEND);
  const keys = vbdKeys(d, devid, path);
  await addDevice(xs, { kind: 'vbd', backend: backend.domid, frontend, devid, ...keys });
  const added = (await listDevices(xs, frontend, 'vbd')).find((x) => x.devid === devid);
  if (!added) throw new XenError('EIO', `disk ${d.vdev}: device directory vanished right after it was written`);
  return added;
}

/** libxl_vdev_to_device_disk: a vdev name (or number) to the domain's device. */
export async function findDisk(xs: XenstoreClient, frontend: DomId, vdev: string): Promise<DeviceRef | null> {
  const devid = vdevToNumber(vdev);
  if (devid === null) return null;
  return (await listDevices(xs, frontend, 'vbd')).find((x) => x.devid === devid) ?? null;
}

/** One `xl block-list` row: printf("%-5d %-3d %-6d %-5d %-6d %-8d %-30s\n") of libxl_diskinfo. */
export async function blockListRow(xs: XenstoreClient, dev: DeviceRef): Promise<string> {
  const fe = `/local/domain/${dev.frontend}/device/vbd/${dev.devid}`;
  const num = async (k: string) => {
    const v = await xs.tryRead(`${fe}/${k}`);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : -1;
  };
  const cols = [
    String(dev.devid).padEnd(5),
    String(dev.backend).padEnd(3),
    String(dev.frontend).padEnd(6),
    String(await num('state')).padEnd(5),
    String(await num('event-channel')).padEnd(6),
    String(await num('ring-ref')).padEnd(8),
    dev.backendPath.padEnd(30),
  ];
  return cols.join(' ');
}

export const BLOCK_LIST_HEADER = ['Vdev'.padEnd(5), 'BE'.padEnd(3), 'handle'.padEnd(6), 'state'.padEnd(5), 'evt-ch'.padEnd(6), 'ring-ref'.padEnd(8), 'BE-path'.padEnd(30)].join(' ');
