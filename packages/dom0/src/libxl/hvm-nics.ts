/**
 * An HVM guest's `vif=` entries, as libxl lays them out for a guest whose
 * device model runs in a stub domain (tools/libs/light/libxl_dm.c,
 * libxl__dm_vifs_from_hvm_guest_config; libxl_create.c):
 *
 *   - the guest gets its vifs (nictype vif_ioemu), for PV network drivers it
 *     might load: firmware like U-Boot has none, so they stay Initialising,
 *     which is what `xl network-list <guest>` shows on Xen too;
 *   - the device model's domain gets a copy of each (nictype vif, same
 *     devid, MAC and bridge): its netfront is what the emulated NIC
 *     (virtio-net, packages/stubdom) sends and receives through, so
 *     `xl network-list <guest>-dm` shows them Connected.
 *
 * A MAC left to libxl's choice is chosen once, here, so both copies and the
 * emulated NIC agree.  A device model hosted in dom0 (device_model_
 * stubdomain_override = 0) has its copies under dom0's device/vif with the
 * next free devids there (several guests share dom0); Xen puts a tap
 * `vif<domid>.<devid>-emu` on the bridge instead.
 */
import type { DomId } from '@xenbox/abi';
import type { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import type { NicSpec } from '../xlcfg/vif-spec.js';
import { listDevices, removeDevice, type DeviceRef } from './device.js';
import { addNic } from './device-vif.js';

/**
 * What one NIC costs the device model's domain: its netfront's own pages (2
 * rings + a page per tx and rx slot, 514 pages, libxen netfront.ts) with
 * room to spare.  Without it the stub domain's 16 MiB run out at the 8th NIC.
 */
export const NETFRONT_MEMKB = 2560;

/** Xen's TAP_DEVICE_SUFFIX, for the device model's copy of a named vif. */
const EMU_SUFFIX = '-emu';

/** libxl__add_nics for the HVM guest itself: vif_ioemu, devid = its place in the list. */
export async function addGuestNics(hv: HypervisorConnection, xs: XenstoreClient, guest: DomId, nics: readonly NicSpec[]): Promise<DeviceRef[]> {
  const out: DeviceRef[] = [];
  for (const [i, n] of nics.entries()) out.push(await addNic(hv, xs, guest, n, { devid: i, hvm: true }));
  return out;
}

/**
 * The device model's copies, in the guest's order (the virtio-mmio order):
 * the stub domain's keep the guest's devids; dom0's take the next free ones.
 */
export async function addDeviceModelNics(hv: HypervisorConnection, xs: XenstoreClient, frontend: DomId, nics: readonly NicSpec[]): Promise<DeviceRef[]> {
  const out: DeviceRef[] = [];
  for (const [i, n] of nics.entries()) {
    const copy: NicSpec = { ...n, nictype: 'vif', ...(n.ifname ? { ifname: n.ifname + EMU_SUFFIX } : {}) };
    if (frontend === 0) delete copy.devid;
    out.push(await addNic(hv, xs, frontend, copy, frontend === 0 ? {} : { devid: n.devid ?? i }));
  }
  return out;
}

/**
 * Remove the device model's vifs (force: its netfront is going or gone).
 * The frontend's `backend` key is followed when it is still there, since a
 * restarted netback moves the backend directory (device-rebind.ts).
 */
export async function removeDeviceModelNics(xs: XenstoreClient, refs: readonly DeviceRef[]): Promise<void> {
  if (!refs.length) return;
  const now = await listDevices(xs, refs[0]!.frontend, 'vif').catch(() => [] as DeviceRef[]);
  for (const r of refs) {
    const cur = now.find((d) => d.devid === r.devid) ?? r;
    await removeDevice(xs, cur, { force: true }).catch(() => undefined);
  }
}
