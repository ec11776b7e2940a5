/**
 * Moving devices to a restarted driver domain.
 *
 * Real Xen has no answer for a driver domain that dies: its devices are
 * gone until someone re-attaches them.  xenbox restarts a dead blkback or
 * netback as a NEW domain (new domid, DESIGN §11), so the toolstack moves
 * each of its devices over:
 *
 *   1. before the dead domain is released (which removes
 *      /local/domain/<old>, backend directories included) the toolstack keys
 *      of each backend directory are saved (`snapshotBackendDevices`);
 *   2. once the new domain exists, each device gets a fresh backend
 *      directory under it with those keys and state Initialising, and its
 *      frontend is pointed there (`backend`, `backend-id`) with its own state
 *      reset to Initialising — in one transaction (`rebindDevices`).
 *
 * The frontend sees its backend change and walks the xenbus handshake again
 * with the new backend (new ring grant, new event channel), then re-issues
 * what had no response.  Resetting the frontend's state is what keeps the
 * new backend from reading the old ring-ref/event-channel, which name
 * grants and a channel to the dead domain.
 */
import { XenbusState, backendPath, backendRoot, frontendPath, type DomId, type XenbusDeviceKind } from '@xenbox/abi';
import type { XenstoreClient } from '@xenbox/libxen';

/** The keys libxl writes into a backend directory (device-vbd.ts, device-vif.ts); the backend's own are not carried. */
const TOOLSTACK_KEYS: Record<'vbd' | 'vif', readonly string[]> = {
  vbd: ['params', 'type', 'dev', 'mode', 'device-type', 'removable', 'bootable', 'discard-enable', 'direct-io-safe'],
  vif: ['mac', 'bridge', 'handle', 'type', 'script', 'ip', 'vifname', 'gatewaydev', 'mtu', 'vlan', 'rate'],
};

export interface SavedBackendDevice {
  kind: 'vbd' | 'vif';
  frontend: DomId;
  devid: number;
  keys: Record<string, string>;
  /** The dead backend had it Connected (a frontend was using it), as opposed to waiting for a frontend that never came. */
  wasConnected: boolean;
}

/** Step 1: the toolstack keys of every device a (dead) backend domain served. */
export async function snapshotBackendDevices(xs: XenstoreClient, backend: DomId): Promise<SavedBackendDevice[]> {
  const saved: SavedBackendDevice[] = [];
  for (const kind of ['vbd', 'vif'] as const) {
    const root = backendRoot(backend, kind);
    for (const fe of await listNumeric(xs, root)) {
      for (const devid of await listNumeric(xs, `${root}/${fe}`)) {
        const dir = `${root}/${fe}/${devid}`;
        const keys: Record<string, string> = {};
        for (const k of TOOLSTACK_KEYS[kind]) {
          const v = await xs.tryRead(`${dir}/${k}`);
          if (v !== undefined) keys[k] = v;
        }
        const wasConnected = (await xs.tryRead(`${dir}/state`)) === String(XenbusState.Connected);
        saved.push({ kind, frontend: fe, devid, keys, wasConnected });
      }
    }
  }
  return saved;
}

/**
 * Step 2: give each saved device to `newBackend`.  A device whose frontend
 * has gone (guest destroyed meanwhile) or was re-pointed by someone else is
 * skipped.  Returns the devices moved.
 */
export async function rebindDevices(xs: XenstoreClient, saved: SavedBackendDevice[], oldBackend: DomId, newBackend: DomId): Promise<SavedBackendDevice[]> {
  const moved: SavedBackendDevice[] = [];
  for (const dev of saved) {
    const fe = frontendPath(dev.frontend, dev.kind as XenbusDeviceKind, dev.devid);
    const be = backendPath(newBackend, dev.kind, dev.frontend, dev.devid);
    const done = await xs.transaction(async (t) => {
      const pointsAt = await t.tryRead(`${fe}/backend-id`);
      if (pointsAt !== String(oldBackend)) return false;
      await t.mkdir(be);
      await t.setPerms(be, [{ id: newBackend, perm: 'n' }, { id: dev.frontend, perm: 'r' }]);
      const keys = { frontend: fe, 'frontend-id': String(dev.frontend), online: '1', state: String(XenbusState.Initialising), ...dev.keys };
      for (const [k, v] of Object.entries(keys)) await t.write(`${be}/${k}`, v);
      await grantReadToNewBackend(t, fe, oldBackend, newBackend);
      await t.write(`${fe}/backend`, be);
      await t.write(`${fe}/backend-id`, String(newBackend));
      await t.write(`${fe}/state`, String(XenbusState.Initialising));
      return true;
    });
    if (done) moved.push(dev);
  }
  return moved;
}

type Tx = Parameters<Parameters<XenstoreClient['transaction']>[0]>[0];

/**
 * The frontend directory and every node under it named the dead backend in
 * its permissions (libxl gave it read access; nodes the frontend wrote
 * inherited that); the new backend takes its place, or it could not read the
 * frontend's state, ring-ref or event-channel.
 */
async function grantReadToNewBackend(t: Tx, path: string, oldBackend: DomId, newBackend: DomId): Promise<void> {
  const perms = await t.getPerms(path);
  if (perms.some((p) => p.id === oldBackend)) {
    await t.setPerms(path, perms.map((p) => (p.id === oldBackend ? { ...p, id: newBackend } : p)));
  }
  for (const child of await t.directory(path)) await grantReadToNewBackend(t, `${path}/${child}`, oldBackend, newBackend);
}

async function listNumeric(xs: XenstoreClient, dir: string): Promise<number[]> {
  const names = await xs.directory(dir).catch(() => [] as string[]);
  return names.filter((n) => /^\d+$/.test(n)).map(Number);
}
