/**
 * The xenbus device protocol (xen/include/public/io/xenbus.h): the state each
 * end of a split device publishes in its xenstore directory, and the
 * directory layout libxl makes for a device (tools/libs/light/libxl_device.c).
 *
 * Handshake (io/xenbus.h, docs/misc/... and Linux xenbus drivers):
 *   toolstack: both dirs, state Initialising (1)
 *   backend:   features -> InitWait (2)
 *   frontend:  ring-ref, event-channel -> Initialised (3)
 *   backend:   maps the ring, binds the channel -> Connected (4)
 *   frontend:  reads sizes -> Connected (4)
 *   teardown:  online=0, backend Closing (5) -> both Closed (6)
 */
import type { DomId } from './domid.js';

export const XenbusState = {
  Unknown: 0,
  Initialising: 1,
  InitWait: 2,
  Initialised: 3,
  Connected: 4,
  Closing: 5,
  Closed: 6,
  Reconfiguring: 7,
  Reconfigured: 8,
} as const;
export type XenbusStateValue = (typeof XenbusState)[keyof typeof XenbusState];

const STATE_NAMES = Object.fromEntries(Object.entries(XenbusState).map(([k, v]) => [v, k])) as Record<number, string>;

/** "Connected (4)": how logs and errors name a state. */
export function xenbusStateName(state: number): string {
  return `${STATE_NAMES[state] ?? 'Invalid'} (${state})`;
}

/** A state as read from xenstore; anything not a known state number is Unknown, as xenbus_read_driver_state does. */
export function parseXenbusState(text: string | undefined): XenbusStateValue {
  if (text === undefined || !/^\d+$/.test(text.trim())) return XenbusState.Unknown;
  const n = Number(text.trim());
  return (n in STATE_NAMES ? n : XenbusState.Unknown) as XenbusStateValue;
}

/** Device kinds xenbox's backends serve, named as in xenstore paths. */
export type XenbusDeviceKind = 'vbd' | 'vif' | 'console';

/** /local/domain/<backend>/backend/<kind>/<frontend>/<devid> */
export function backendPath(backend: DomId, kind: XenbusDeviceKind, frontend: DomId, devid: number): string {
  return `/local/domain/${backend}/backend/${kind}/${frontend}/${devid}`;
}

/** /local/domain/<frontend>/device/<kind>/<devid> */
export function frontendPath(frontend: DomId, kind: XenbusDeviceKind, devid: number): string {
  return `/local/domain/${frontend}/device/${kind}/${devid}`;
}

/** The directory a backend domain watches for new devices of one kind. */
export function backendRoot(backend: DomId, kind: XenbusDeviceKind): string {
  return `/local/domain/${backend}/backend/${kind}`;
}

/**
 * Split a path under a backend root into (frontend domid, devid, rest), or
 * null if it is not inside a device directory.
 */
export function parseBackendDevicePath(root: string, path: string): { frontend: DomId; devid: number; rest: string } | null {
  if (!path.startsWith(`${root}/`)) return null;
  const [fe, dev, ...rest] = path.slice(root.length + 1).split('/');
  if (!fe || !dev || !/^\d+$/.test(fe) || !/^\d+$/.test(dev)) return null;
  return { frontend: Number(fe), devid: Number(dev), rest: rest.join('/') };
}

/**
 * How long libxl waits (tools/libs/light/libxl_internal.h):
 * LIBXL_INIT_TIMEOUT for a backend to reach InitWait, LIBXL_DESTROY_TIMEOUT
 * for it to reach Closed on removal.
 */
export const LIBXL_INIT_TIMEOUT_MS = 10_000;
export const LIBXL_DESTROY_TIMEOUT_MS = 10_000;

/** Virtual block device numbers (docs/man/xen-vbd-interface.7.pandoc). */
export function vdevToNumber(vdev: string): number | null {
  if (/^\d+$/.test(vdev)) return Number(vdev);
  let m = /^d(\d+)(?:p(\d+))?$/.exec(vdev);
  if (m) return xvdNumber(Number(m[1]), m[2] === undefined ? 0 : Number(m[2]));
  m = /^(xvd|hd|sd)([a-z]+)(\d*)$/.exec(vdev);
  if (!m) return null;
  const disk = diskIndex(m[2]!);
  const part = m[3] ? Number(m[3]) : 0;
  switch (m[1]) {
    case 'xvd':
      return xvdNumber(disk, part);
    case 'sd':
      return disk < 16 && part < 16 ? (8 << 8) | (disk << 4) | part : null;
    default: // hd
      if (part > 63) return null;
      if (disk <= 1) return (3 << 8) | (disk << 6) | part;
      if (disk <= 3) return (22 << 8) | ((disk - 2) << 6) | part;
      return null;
  }
}

function xvdNumber(disk: number, part: number): number | null {
  if (disk < 16 && part < 16) return (202 << 8) | (disk << 4) | part;
  if (disk < 1 << 20 && part < 256) return (1 << 28) | (disk << 8) | part;
  return null;
}

/** "a" -> 0, "z" -> 25, "aa" -> 26 (bijective base 26, as xvdaa follows xvdz). */
function diskIndex(letters: string): number {
  let n = 0;
  for (const c of letters) n = n * 26 + (c.charCodeAt(0) - 96);
  return n - 1;
}
