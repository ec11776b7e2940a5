/**
 * An HVM guest's `disk=` entries, as libxl lays them out when the device
 * model runs in a stub domain (tools/libs/light/libxl_create.c
 * domcreate_launch_dm → libxl__add_disks for the guest; libxl_dm.c
 * spawn_stub_launch_dm → libxl__add_disks for the stub domain with the
 * guest's disks):
 *
 *   - the guest gets its vbds, for PV block drivers it might load: firmware
 *     like U-Boot has none, so they stay Initialising/InitWait, which is what
 *     `xl block-list <guest>` shows on Xen too;
 *   - the device model's domain gets a copy of each (same devid, params,
 *     mode): its blkfront is the disk behind the emulated virtio-blk
 *     (packages/stubdom), so `xl block-list <guest>-dm` shows them Connected.
 *
 * A device model in dom0 (device_model_stubdomain_override = 0) has its
 * copies under dom0's device/vbd with free devids there (several guests
 * share dom0); Xen's dom0 QEMU opens the image itself instead.
 *
 * Virtio order: the disks the firmware should try first come first
 * (`boot=`: c = hard disks, d = CD-ROMs, in the order of its letters; the
 * rest after them), otherwise disk= order.  An empty CD-ROM drive has no
 * medium to emulate and gets no virtio device.
 */
import { XEN_PAGE_SIZE, vdevToNumber, type DomId } from '@xenbox/abi';
import type { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import type { DiskSpec } from '../xlcfg/disk-spec.js';
import { addDevice, listDevices, removeDevice, resolveBackendDomain, type DeviceRef } from './device.js';
import { DEFAULT_VBD_BACKEND, addDisk, checkDisk, vbdKeys } from './device-vbd.js';

/**
 * Stub-domain memory per disk, over a process domain's default: the device
 * model's blkfront grants pages of its own domain, at most a full ring of
 * requests with their indirect pages (32 slots × (32 + 1) pages) plus one
 * growth step (64 pages) and the ring page: 1,121 pages, 4.4 MiB.  Without
 * it the fifth disk's pool could not grow (measured: eight disks, 8 MiB
 * `virtio read` on each, disks 4-7 failed with ENOMEM in 16 MiB).
 */
export const BLKFRONT_MEMKB = 4608;

/**
 * A device model hosted in dom0 grants dom0's pages for its blkfronts, from
 * the same max_mem as every other dom0 process: raise dom0's limit by their
 * share while it runs (libxl moves dom0's memory for guests too, the other
 * way: it balloons dom0 down, libxl__fill_dom0_memory_info/freemem).  Not
 * atomic: two creates adjusting at the same moment may lose one's change.
 */
export async function adjustMaxMem(hv: HypervisorConnection, domid: DomId, deltaKb: number): Promise<void> {
  if (!deltaKb) return;
  const info = await hv.call('domctl.getdomaininfo', { domid });
  await hv.call('domctl.max_mem', { domid, max_memkb: Math.max(info.maxPages * (XEN_PAGE_SIZE / 1024) + deltaKb, 0) });
}

/** The disks that become virtio-blk devices, in virtio order (boot= first, then disk= order). */
export function virtioDiskOrder(disks: readonly DiskSpec[], boot = 'cd'): DiskSpec[] {
  const rank = (d: DiskSpec): number => {
    const i = boot.indexOf(d.isCdrom ? 'd' : 'c');
    return i < 0 ? boot.length : i;
  };
  return disks.filter((d) => d.pdevPath).map((d, i) => ({ d, i })).sort((a, b) => rank(a.d) - rank(b.d) || a.i - b.i).map((x) => x.d);
}

/** libxl__add_disks for the HVM guest itself. */
export async function addGuestDisks(hv: HypervisorConnection, xs: XenstoreClient, guest: DomId, disks: readonly DiskSpec[], configDir?: string): Promise<DeviceRef[]> {
  const out: DeviceRef[] = [];
  for (const d of disks) out.push(await addDisk(hv, xs, guest, d, configDir));
  return out;
}

/** The device model's copies, in virtio order: a stub domain's keep the guest's devids, dom0's take free ones. */
export async function addDeviceModelDisks(hv: HypervisorConnection, xs: XenstoreClient, frontend: DomId, disks: readonly DiskSpec[], configDir?: string): Promise<DeviceRef[]> {
  const out: DeviceRef[] = [];
  try {
    for (const d of disks) {
      if (frontend !== 0) {
        out.push(await addDisk(hv, xs, frontend, d, configDir));
        continue;
      }
      const { path } = checkDisk(d, configDir);
      const devid = await freeVbdDevid(xs, frontend, vdevToNumber(d.vdev)!);
      const backend = await resolveBackendDomain(hv, d.backendDomname, DEFAULT_VBD_BACKEND);
      await addDevice(xs, { kind: 'vbd', backend: backend.domid, frontend, devid, ...vbdKeys(d, devid, path) });
      const added = (await listDevices(xs, frontend, 'vbd')).find((x) => x.devid === devid);
      if (added) out.push(added);
    }
  } catch (e) {
    await removeDeviceModelDisks(xs, out);
    throw e;
  }
  return out;
}

/** `want` if dom0 has no vbd by that number, else one past the largest in use (libxl__device_nextid). */
async function freeVbdDevid(xs: XenstoreClient, frontend: DomId, want: number): Promise<number> {
  const used = (await listDevices(xs, frontend, 'vbd')).map((d) => d.devid);
  return used.includes(want) ? Math.max(...used) + 1 : want;
}

/** Remove the device model's vbds (force: its blkfront is going or gone); a restarted blkback's new path is followed. */
export async function removeDeviceModelDisks(xs: XenstoreClient, refs: readonly DeviceRef[]): Promise<void> {
  if (!refs.length) return;
  const now = await listDevices(xs, refs[0]!.frontend, 'vbd').catch(() => [] as DeviceRef[]);
  for (const r of refs) {
    const cur = now.find((d) => d.devid === r.devid) ?? r;
    await removeDevice(xs, cur, { force: true }).catch(() => undefined);
  }
}
