/**
 * What the toolstack told a vbd's backend, read from its backend directory
 * (the keys libxl's device_disk_add writes; xenbox's toolstack writes them in
 * packages/dom0/src/libxl/device-vbd.ts):
 *
 *   params        "<format>:<path>" (libxl's qdisk form), or a plain path
 *                 (phy form; served as raw — a plain path is never probed,
 *                 so a guest that writes a qcow2 header into its raw disk
 *                 cannot make us open it as qcow2), or "" for an empty cdrom
 *   mode          "w" (or "w!", shared-writable) / "r"
 *   device-type   "disk" | "cdrom" (a cdrom is always read-only)
 *   discard-enable "0" turns discard off (default on)
 */
import { XenError } from '@xenbox/abi';
import type { XenstoreClient } from '@xenbox/libxen';
import type { ImageFormat } from './image/block-image.js';

export interface VbdConfig {
  /** Image path, or null for an empty cdrom drive. */
  path: string | null;
  format: ImageFormat;
  readOnly: boolean;
  cdrom: boolean;
  discard: boolean;
}

/** libxl's format prefixes we serve ("aio" is its old name for a raw file). */
const FORMATS: Record<string, ImageFormat> = { raw: 'raw', qcow2: 'qcow2', aio: 'raw' };

/** Split params into format and path. */
export function parseParams(params: string): { format: ImageFormat; path: string | null } {
  if (params === '') return { format: 'raw', path: null };
  const m = /^([a-z0-9]+):(.*)$/.exec(params);
  if (!m) return { format: 'raw', path: params };
  const format = FORMATS[m[1]!];
  if (!format) throw new XenError('EOPNOTSUPP', `params "${params}": format '${m[1]}' is not served (raw and qcow2 are)`);
  if (m[2] === '') throw new XenError('EINVAL', `params "${params}": no image path`);
  return { format, path: m[2]! };
}

export async function readVbdConfig(xs: XenstoreClient, dir: string): Promise<VbdConfig> {
  const params = await xs.tryRead(`${dir}/params`);
  if (params === undefined) throw new XenError('ENOENT', `${dir}/params is missing`);
  const { format, path } = parseParams(params.trim());
  const mode = (await xs.tryRead(`${dir}/mode`)) ?? 'r';
  if (!/^(w!?|r)$/.test(mode)) throw new XenError('EINVAL', `${dir}/mode = "${mode}" (expected w or r)`);
  const deviceType = (await xs.tryRead(`${dir}/device-type`)) ?? 'disk';
  if (deviceType !== 'disk' && deviceType !== 'cdrom') throw new XenError('EINVAL', `${dir}/device-type = "${deviceType}" (expected disk or cdrom)`);
  const cdrom = deviceType === 'cdrom';
  const readOnly = cdrom || mode === 'r' || path === null;
  const discard = !readOnly && (await xs.tryRead(`${dir}/discard-enable`)) !== '0';
  return { path, format, readOnly, cdrom, discard };
}
