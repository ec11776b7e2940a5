/**
 * Virtual network interfaces: a parsed vif spec (xl-network-configuration(5))
 * with libxl's defaults to the xenstore keys libxl writes
 * (tools/libs/light/libxl_nic.c, libxl__set_xenstore_nic /
 * libxl__nic_from_xenstore), and the `xl network-list` row
 * (libxl_device_nic_getinfo).
 */
import { randomBytes } from 'node:crypto';
import { XenError, type DomId } from '@xenbox/abi';
import type { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import { formatMac, nicDefaults, type NicSpec } from '../xlcfg/vif-spec.js';
import { addDevice, listDevices, resolveBackendDomain, type DeviceRef } from './device.js';

/** The driver domain that serves vifs unless a spec says backend=. */
export const DEFAULT_VIF_BACKEND = 'netback';

/** libxl__device_nic_setdefault's random MAC tail: 3 random octets, the first with its top bit clear. */
export function randomMacTail(): [number, number, number] {
  const b = randomBytes(3);
  return [b[0]! & 0x7f, b[1]!, b[2]!];
}

/**
 * The NICs with their MACs fixed once, at creation (libxl__device_nic_setdefault
 * runs on the guest's config, and libxl keeps the result with the domain).
 */
export function withMacs(nics: readonly NicSpec[]): NicSpec[] {
  return nics.map((n) => ({ ...n, mac: n.mac ?? [0x00, 0x16, 0x3e, ...randomMacTail()] }));
}

/**
 * A restart re-reads the config file, but a NIC keeps the MAC it was given
 * (xl's reload_domain_config takes the live domain's configuration, MACs
 * filled in, from libxl_retrieve_domain_configuration): the same NIC by
 * position keeps the MAC `previous` had chosen for it.
 */
export function keepMacs(nics: readonly NicSpec[], previous: readonly NicSpec[] | undefined): NicSpec[] {
  return nics.map((n, i) => (n.mac || !previous?.[i]?.mac ? n : { ...n, mac: previous[i]!.mac }));
}

/** The backend and frontend keys of one vif. */
export function vifKeys(n: ReturnType<typeof nicDefaults>, devid: number): { backendKeys: Record<string, string>; frontendKeys: Record<string, string> } {
  const mac = formatMac(n.mac);
  const backendKeys: Record<string, string> = {
    mac,
    bridge: n.bridge,
    handle: String(devid),
    type: n.nictype,
    script: n.script,
    'hotplug-status': '',
  };
  if (n.ip) backendKeys.ip = n.ip;
  if (n.ifname) backendKeys.vifname = n.ifname;
  if (n.gatewaydev) backendKeys.gatewaydev = n.gatewaydev;
  if (n.mtu !== 1500) backendKeys.mtu = String(n.mtu);
  if (n.vlan) backendKeys.vlan = n.vlan;
  if (n.rateBytesPerInterval) backendKeys.rate = `${n.rateBytesPerInterval},${n.rateIntervalUsecs ?? 0}`;
  const frontendKeys: Record<string, string> = {
    handle: String(devid),
    mac,
    mtu: String(n.mtu),
    trusted: n.trusted === false ? '0' : '1',
  };
  return { backendKeys, frontendKeys };
}

/** The next free devid: libxl__device_nextid, one past the largest in use. */
async function nextVifDevid(xs: XenstoreClient, frontend: DomId): Promise<number> {
  const used = (await listDevices(xs, frontend, 'vif')).map((d) => d.devid);
  return used.length ? Math.max(...used) + 1 : 0;
}

/** libxl_device_nic_add: defaults, the backend domain, both directories. */
export async function addNic(hv: HypervisorConnection, xs: XenstoreClient, frontend: DomId, spec: NicSpec, opts: { devid?: number; hvm?: boolean } = {}): Promise<DeviceRef> {
  const devid = spec.devid ?? opts.devid ?? (await nextVifDevid(xs, frontend));
  const n = nicDefaults(spec, { domid: frontend, devid, hvm: opts.hvm ?? false, randomMacTail: randomMacTail() });
  const backend = await resolveBackendDomain(hv, n.backendDomname, DEFAULT_VIF_BACKEND);
  await addDevice(xs, { kind: 'vif', backend: backend.domid, frontend, devid, ...vifKeys(n, devid) });
  const added = (await listDevices(xs, frontend, 'vif')).find((x) => x.devid === devid);
  if (!added) throw new XenError('EIO', `vif ${devid}: device directory vanished right after it was written`);
  return added;
}

/** `xl network-detach DOM DEVID|MAC`: find the vif by devid or MAC. */
export async function findNic(xs: XenstoreClient, frontend: DomId, which: string): Promise<DeviceRef | null> {
  const devs = await listDevices(xs, frontend, 'vif');
  if (!which.includes(':')) return devs.find((d) => d.devid === Number(which)) ?? null;
  for (const d of devs) {
    const mac = await xs.tryRead(`/local/domain/${frontend}/device/vif/${d.devid}/mac`);
    if (mac?.toLowerCase() === which.toLowerCase()) return d;
  }
  return null;
}

/** `xl network-list` header: printf("%-3s %-2s %-17s %-6s %-5s %-6s %5s/%-5s %-30s\n", ...). */
export const NETWORK_LIST_HEADER = `${'Idx'.padEnd(3)} ${'BE'.padEnd(2)} ${'Mac Addr.'.padEnd(17)} ${'handle'.padEnd(6)} ${'state'.padEnd(5)} ${'evt-ch'.padEnd(6)} ${'tx-'.padStart(5)}/${'rx-ring-ref'.padEnd(5)} ${'BE-path'.padEnd(30)}`;

/** One row: "%-3d %-2d " MAC "%6d %5d %6d %5d/%-11d %-30s\n" of libxl_nicinfo. */
export async function networkListRow(xs: XenstoreClient, dev: DeviceRef): Promise<string> {
  const fe = `/local/domain/${dev.frontend}/device/vif/${dev.devid}`;
  const num = async (k: string) => {
    const v = await xs.tryRead(`${fe}/${k}`);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : -1;
  };
  const mac = (await xs.tryRead(`${fe}/mac`)) ?? '00:00:00:00:00:00';
  return (
    `${String(dev.devid).padEnd(3)} ${String(dev.backend).padEnd(2)} ${mac}` +
    `${String(dev.devid).padStart(6)} ${String(await num('state')).padStart(5)} ${String(await num('event-channel')).padStart(6)} ` +
    `${String(await num('tx-ring-ref')).padStart(5)}/${String(await num('rx-ring-ref')).padEnd(11)} ${dev.backendPath.padEnd(30)}`
  );
}
