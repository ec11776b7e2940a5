/**
 * `xl block-attach/-list/-detach` and `xl network-attach/-list/-detach`
 * (tools/xl/xl_block.c, xl_nic.c): the toolstack side of hotplug.  Attaching
 * writes the device's two xenstore directories; the guest's frontend and
 * the driver domain's backend then connect on their own.
 */
import type { DomId } from '@xenbox/abi';
import { parseDiskSpec } from '../xlcfg/disk-spec.js';
import { parseNicArgs } from '../xlcfg/vif-spec.js';
import { removeDevice } from '../libxl/device.js';
import { BLOCK_LIST_HEADER, addDisk, blockListRow, findDisk } from '../libxl/device-vbd.js';
import { NETWORK_LIST_HEADER, addNic, findNic, networkListRow } from '../libxl/device-vif.js';
import { listDevices } from '../libxl/device.js';
import { findDomid, withXenstore, type XlContext } from './context.js';
import { XlFailure } from './failure.js';

/** `xl block-attach DOM SPEC...`: "libxl_device_disk_add failed." on error, as xl. */
export async function xlBlockAttach(ctx: XlContext, dom: string, specs: string[]): Promise<void> {
  const domid = await domainOrFail(ctx, dom);
  const disk = parseDiskSpec(specs, { source: 'block-attach' });
  await withXenstore(ctx, async (xs) => {
    try {
      await addDisk(ctx.hv, xs, domid, disk);
    } catch (e) {
      throw new XlFailure(`xl: ${(e as Error).message}\nlibxl_device_disk_add failed.`);
    }
  });
}

/** `xl block-list DOM...`: one header, then a row per disk of each domain. */
export async function xlBlockList(ctx: XlContext, doms: string[]): Promise<string> {
  return withXenstore(ctx, async (xs) => {
    const lines = [BLOCK_LIST_HEADER];
    for (const dom of doms) {
      const domid = await domainOrSkip(ctx, dom);
      if (domid === null) continue;
      for (const dev of await listDevices(xs, domid, 'vbd')) lines.push(await blockListRow(xs, dev));
    }
    return lines.join('\n') + '\n';
  });
}

/** `xl block-detach [-f] DOM VDEV`. */
export async function xlBlockDetach(ctx: XlContext, dom: string, vdev: string, force: boolean): Promise<void> {
  const domid = await findDomid(ctx, dom);
  await withXenstore(ctx, async (xs) => {
    const dev = await findDisk(xs, domid, vdev);
    if (!dev) throw new XlFailure(`Error: Device ${vdev} not connected.`);
    try {
      await removeDevice(xs, dev, { force });
    } catch (e) {
      throw new XlFailure(`xl: ${(e as Error).message}\nlibxl_device_disk_${force ? 'destroy' : 'safe_remove'} failed.`);
    }
  });
}

/** `xl network-attach DOM [SPEC...]`. */
export async function xlNetworkAttach(ctx: XlContext, dom: string, tokens: string[]): Promise<void> {
  const domid = await findDomid(ctx, dom);
  const { nic, warnings } = parseNicArgs(tokens);
  for (const w of warnings) process.stderr.write(`${w}\n`);
  await withXenstore(ctx, async (xs) => {
    try {
      await addNic(ctx.hv, xs, domid, nic);
    } catch (e) {
      throw new XlFailure(`xl: ${(e as Error).message}\nlibxl_device_nic_add failed.`);
    }
  });
}

/** `xl network-list DOM...`. */
export async function xlNetworkList(ctx: XlContext, doms: string[]): Promise<string> {
  return withXenstore(ctx, async (xs) => {
    const lines = [NETWORK_LIST_HEADER];
    for (const dom of doms) {
      const domid = await findDomid(ctx, dom);
      for (const dev of await listDevices(xs, domid, 'vif')) lines.push(await networkListRow(xs, dev));
    }
    return lines.join('\n') + '\n';
  });
}

/** `xl network-detach DOM DEVID|MAC`. */
export async function xlNetworkDetach(ctx: XlContext, dom: string, which: string): Promise<void> {
  const domid = await findDomid(ctx, dom);
  await withXenstore(ctx, async (xs) => {
    const dev = await findNic(xs, domid, which);
    if (!dev) throw new XlFailure(`Unknown device ${which}.`);
    try {
      await removeDevice(xs, dev);
    } catch (e) {
      throw new XlFailure(`xl: ${(e as Error).message}\nlibxl_device_nic_del failed.`);
    }
  });
}

/** block-attach: "%s is an invalid domain identifier" (libxl_domain_qualifier_to_domid). */
async function domainOrFail(ctx: XlContext, dom: string): Promise<DomId> {
  const d = await domainOrSkip(ctx, dom);
  if (d === null) throw new XlFailure(`${dom} is an invalid domain identifier`);
  return d;
}

/** block-list goes on past a bad domain after saying so. */
async function domainOrSkip(ctx: XlContext, dom: string): Promise<DomId | null> {
  try {
    return await findDomid(ctx, dom);
  } catch {
    process.stderr.write(`${dom} is an invalid domain identifier\n`);
    return null;
  }
}
