/**
 * Adding and removing split devices in xenstore, as libxl does for every
 * device kind (tools/libs/light/libxl_device.c: libxl__device_generic_add,
 * libxl__initiate_device_generic_remove, libxl__device_destroy).
 *
 *   frontend /local/domain/<fe>/device/<kind>/<devid>     owner fe, backend may read
 *     backend, backend-id, state=1, + kind's keys
 *   backend  /local/domain/<be>/backend/<kind>/<fe>/<devid> owner be, frontend may read
 *     frontend, frontend-id, online=1, state=1, + kind's keys
 *
 * Both directories are written in one transaction, so a backend's watch
 * never sees half a device.  Removal asks the backend to close (online=0,
 * state=Closing), waits for Closed (LIBXL_DESTROY_TIMEOUT), then removes both
 * directories; `force` skips the wait, as `xl block-detach --force` does.
 */
import {
  LIBXL_DESTROY_TIMEOUT_MS,
  XenError,
  XenbusState,
  backendPath,
  frontendPath,
  type DomId,
  type DomainInfo,
  type XenbusDeviceKind,
} from '@xenbox/abi';
import { readXenbusState, waitForXenbusState, type HypervisorConnection, type XenstoreClient } from '@xenbox/libxen';

export interface DeviceSpec {
  kind: XenbusDeviceKind;
  backend: DomId;
  frontend: DomId;
  devid: number;
  /** The kind's own backend keys (params, mode, mac, bridge, ...). */
  backendKeys: Record<string, string>;
  /** The kind's own frontend keys (virtual-device, mac, handle, ...). */
  frontendKeys: Record<string, string>;
}

/** libxl__device_generic_add: both directories, their permissions and keys, in one transaction. */
export async function addDevice(xs: XenstoreClient, d: DeviceSpec): Promise<void> {
  const fe = frontendPath(d.frontend, d.kind, d.devid);
  const be = backendPath(d.backend, d.kind, d.frontend, d.devid);
  await xs.transaction(async (t) => {
    if ((await t.tryRead(`${fe}/state`)) !== undefined) throw new XenError('EEXIST', `${d.kind} ${d.devid} of domain ${d.frontend} already exists (${fe})`);
    // A stale backend directory (a previous device left by a crashed toolstack) is replaced.
    await t.rm(be).catch((e: XenError) => {
      if (e.errno !== 'ENOENT') throw e;
    });
    await t.mkdir(fe);
    await t.setPerms(fe, [{ id: d.frontend, perm: 'n' }, { id: d.backend, perm: 'r' }]);
    await t.mkdir(be);
    await t.setPerms(be, [{ id: d.backend, perm: 'n' }, { id: d.frontend, perm: 'r' }]);
    const feKeys = { backend: be, 'backend-id': String(d.backend), state: String(XenbusState.Initialising), ...d.frontendKeys };
    const beKeys = { frontend: fe, 'frontend-id': String(d.frontend), online: '1', state: String(XenbusState.Initialising), ...d.backendKeys };
    for (const [k, v] of Object.entries(feKeys)) await t.write(`${fe}/${k}`, v);
    for (const [k, v] of Object.entries(beKeys)) await t.write(`${be}/${k}`, v);
  });
}

export interface DeviceRef {
  kind: XenbusDeviceKind;
  frontend: DomId;
  devid: number;
  /** Where the frontend says its backend is (`backend` key). */
  backendPath: string;
  backend: DomId;
}

/** The devices of one kind a domain has (libxl__device_list: the frontend's device/<kind> directory). */
export async function listDevices(xs: XenstoreClient, frontend: DomId, kind: XenbusDeviceKind): Promise<DeviceRef[]> {
  const dir = `/local/domain/${frontend}/device/${kind}`;
  const ids = await xs.directory(dir).catch((e: XenError) => {
    if (e.errno === 'ENOENT') return [] as string[];
    throw e;
  });
  const out: DeviceRef[] = [];
  for (const id of ids.filter((x) => /^\d+$/.test(x)).sort((a, b) => Number(a) - Number(b))) {
    const fe = `${dir}/${id}`;
    const be = await xs.tryRead(`${fe}/backend`);
    const beId = await xs.tryRead(`${fe}/backend-id`);
    if (be === undefined || beId === undefined) continue;
    out.push({ kind, frontend, devid: Number(id), backendPath: be, backend: Number(beId) });
  }
  return out;
}

/**
 * libxl__initiate_device_generic_remove + libxl__device_destroy: ask the
 * backend to close, wait for it (unless `force`), remove both directories.
 * A backend that does not answer in time is reported, and with `force`
 * removed anyway.
 */
export async function removeDevice(
  xs: XenstoreClient,
  dev: DeviceRef,
  opts: { force?: boolean; timeoutMs?: number } = {},
): Promise<void> {
  const fe = frontendPath(dev.frontend, dev.kind, dev.devid);
  const be = dev.backendPath;
  const backendThere = (await xs.tryRead(`${be}/state`)) !== undefined;
  if (backendThere) {
    await xs.transaction(async (t) => {
      await t.write(`${be}/online`, '0');
      if ((await readXenbusState(xs, be)) !== XenbusState.Closed) await t.write(`${be}/state`, String(XenbusState.Closing));
    });
    if (!opts.force) {
      await waitForXenbusState(xs, be, (s) => s === XenbusState.Closed || s === XenbusState.Unknown, {
        timeoutMs: opts.timeoutMs ?? LIBXL_DESTROY_TIMEOUT_MS,
        what: `backend ${be}`,
      });
    }
  }
  await xs.transaction(async (t) => {
    for (const p of [fe, be]) await removePathAndEmptyParents(t, p);
  });
}

type Tx = Parameters<Parameters<XenstoreClient['transaction']>[0]>[0];

/**
 * libxl__xs_path_cleanup: remove `path`, then each parent left empty
 * (backend/vif/<frontend>, backend/vif, device/vif ...), stopping at the
 * first that still has children or at /local/domain/<id> itself.
 */
async function removePathAndEmptyParents(t: Tx, path: string): Promise<void> {
  await t.rm(path).catch((e: XenError) => {
    if (e.errno !== 'ENOENT') throw e;
  });
  for (let dir = parentOf(path); dir && !/^\/local\/domain\/\d+$/.test(dir) && dir.split('/').length > 4; dir = parentOf(dir)) {
    const children = await t.directory(dir).catch(() => null);
    if (children === null || children.length > 0) return;
    await t.rm(dir);
  }
}

const parentOf = (p: string): string => p.slice(0, p.lastIndexOf('/'));

/** Every device of a dying domain goes, without waiting for backends (libxl__devices_destroy on domain destroy). */
export async function removeAllDevices(xs: XenstoreClient, frontend: DomId): Promise<void> {
  for (const kind of ['vbd', 'vif'] as const) {
    for (const dev of await listDevices(xs, frontend, kind)) await removeDevice(xs, dev, { force: true });
  }
}

/**
 * A backend domain named in a spec (`backend=NAME`), else the stack's
 * driver domain for the kind (xenbox's default: the service named `blkback`
 * for disks, `netback` for nics; real Xen's default is dom0, which here runs
 * no backends).
 */
export async function resolveBackendDomain(hv: HypervisorConnection, name: string | undefined, fallback: string): Promise<DomainInfo> {
  const want = name ?? fallback;
  const list = await hv.call('sysctl.getdomaininfolist', {});
  const byId = /^\d+$/.test(want) ? Number(want) : NaN;
  const d = list.find((x) => x.domid === byId) ?? list.find((x) => x.name === want);
  if (!d) throw new XenError('ENODEV', `backend domain '${want}' does not exist${name ? '' : ' (is the stack running its driver domains?)'}`);
  return d;
}
