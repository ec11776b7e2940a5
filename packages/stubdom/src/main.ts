#!/usr/bin/env node
/**
 * A device model process: `<guest>-dm`, the stub domain of one HVM guest
 * (DESIGN §10), or the same code hosted in dom0 when the guest's config says
 * device_model_stubdomain_override = 0.  Started by the toolstack
 * (packages/dom0/src/libxl/hvm-builder.ts) with the XENBOX_* domain
 * environment and XENBOX_DM_TARGET = the guest's domid.
 *
 * Disks: XENBOX_DM_VBDS names the vbds the toolstack gave this domain (its
 * own device/vbd/<devid>, backend blkback), in virtio order.  Each gets a
 * Blkfront (the stub domain's PV front end, as Xen's stubdom has MiniOS's
 * blkfront) and a virtio-blk device in front of it (devices/virtio-blk.ts),
 * DMA into the guest through foreign memory (guest-memory.ts).
 *
 * It registers as the guest's ioreq server, then says "ready" on fd 3 when
 * the toolstack gave it one (the guest is unpaused only after that), and
 * serves until its domain or its guest is destroyed.
 */
import { closeSync, writeSync } from 'node:fs';
import { ENV_DM_TARGET, ENV_DM_VBDS, ENV_DM_VIFS, XenError, isValidDomId, type DomId } from '@xenbox/abi';
import { Blkfront, bootstrapDomain, runMain, type DomainProcess } from '@xenbox/libxen';
import { DeviceModel } from './device-model.js';
import { VirtioBlk } from './devices/virtio-blk.js';
import { connectNics, emulatedNics } from './emulated-nics.js';
import { ForeignMemory } from './guest-memory.js';
import { startVncConsole, vncArgs, vncReadyLine } from './vnc/vnc-console.js';

/** Tell the toolstack that spawned us that the guest may run (fd 3 is its pipe, if any). */
function tellSpawner(announce = ''): void {
  try {
    writeSync(3, `${announce}ready\n`);
    closeSync(3);
  } catch {
    // Not started with a readiness pipe (started by hand or by a test).
  }
}

/** Devids from a comma-separated environment variable ("" or unset: none). */
function devidList(name: string): number[] {
  const v = process.env[name] ?? '';
  return v === '' ? [] : v.split(',').map((x) => {
    if (!/^\d+$/.test(x)) throw new XenError('EINVAL', `${name}: "${x}" is not a devid`);
    return Number(x);
  });
}

/** One virtio-blk per vbd, each over its own connected Blkfront; the serial is the guest's vdev (the backend's `dev`). */
async function connectDisks(dom: DomainProcess, target: DomId): Promise<VirtioBlk[]> {
  const devids = devidList(ENV_DM_VBDS);
  if (!devids.length) return [];
  const xs = await dom.xenstore();
  const mem = new ForeignMemory(dom.hv, target);
  return Promise.all(devids.map(async (devid) => {
    const disk = await Blkfront.connect({ hv: dom.hv, xs, domid: dom.domid, devid, log: dom.log });
    dom.onShutdown(() => disk.close());
    const serial = (await xs.tryRead(`${disk.info.backendPath}/dev`)) ?? `vbd${devid}`;
    dom.log.info({ devid, serial, sectors: disk.info.sectors, readOnly: disk.info.readOnly, cdrom: disk.info.cdrom }, 'disk connected');
    return new VirtioBlk({ disk, mem, serial, log: dom.log });
  }));
}

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'stubdom' });
  const target = Number(process.env[ENV_DM_TARGET] ?? dom.args.target);
  if (!isValidDomId(target)) throw new Error(`${ENV_DM_TARGET} must name the guest's domid (got ${process.env[ENV_DM_TARGET] ?? 'nothing'})`);
  const disks = await connectDisks(dom, target);
  // NICs after the disks (the toolstack's vif= order), each with a netfront of ours to netback.
  const vifs = devidList(ENV_DM_VIFS);
  const xs = vifs.length ? await dom.xenstore() : null;
  const nics = xs ? await emulatedNics(xs, dom.domid, vifs, new ForeignMemory(dom.hv, target), dom.log) : [];
  const dm = new DeviceModel(target, dom.hv, { virtio: [...disks, ...nics.map((n) => n.net)] });
  disks.forEach((d, i) => d.bindTransport(dm.virtioTransport(i)));
  nics.forEach((n, i) => n.net.bindTransport(dm.virtioTransport(disks.length + i)));
  dom.hv.on('hvm.ioreq', (ev) => {
    if (ev.domid === target) dm.handleIoreq(ev);
  });
  dom.hv.on('hvm.console_input', (ev) => {
    if (ev.domid === target) dm.consoleInput(ev.data);
  });
  dom.hv.on('hvm.ioreq_server.destroyed', (ev) => {
    if (ev.domid === target) void dom.shutdown(`the guest d${target} is gone: ${ev.reason}`);
  });
  dom.onShutdown(() => dom.log.info({ target, ...dm.stats, disks: disks.map((d) => d.stats), nics: nics.map((n) => n.net.stats) }, 'device model statistics'));
  // xl.cfg vnc = 1: the serial console on an RFB server too, listening before the guest runs.
  const vncOpts = vncArgs(dom.args);
  const vnc = vncOpts ? await startVncConsole(dm, vncOpts, dom.log) : null;
  if (vnc) dom.onShutdown(() => vnc.server.close());
  await dm.start();
  dom.log.info({ target, ranges: dm.ranges() }, 'serving the guest as its ioreq server');
  if (xs && nics.length) dom.onShutdown(connectNics({ hv: dom.hv, xs, self: dom.domid, log: dom.log }, nics));
  tellSpawner(vnc ? vncReadyLine(vnc.endpoint) : '');
  dom.ready();
});
