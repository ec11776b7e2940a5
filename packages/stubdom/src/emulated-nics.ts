/**
 * The guest's emulated NICs: one virtio-net per vif the toolstack gave the
 * device model's own domain (ENV_DM_VIFS, devids in the guest's vif= order;
 * packages/dom0/src/libxl/hvm-nics.ts), each reaching netback's bridge
 * through a Netfront in this domain, as a Xen stub domain's QEMU reaches it
 * through MiniOS's netfront.
 *
 * The NIC exists from the start with the vif's MAC; its Netfront connects in
 * the background (the guest need not wait for netback), and from then on
 * follows netback's restarts by itself (libxen netfront.ts, "reconnect").
 * Until the first connection the NIC has no link: frames are dropped.  Each
 * Netfront holds 514 pages of this domain's memory (the toolstack sizes the
 * stub domain for it, hvm-nics.ts NETFRONT_MEMKB).
 */
import { XenError, frontendPath, parseMac, type DomId } from '@xenbox/abi';
import { Netfront, type HypervisorConnection, type Logger, type XenstoreClient } from '@xenbox/libxen';
import type { GuestMemory } from './guest-memory.js';
import { VirtioNet } from './devices/virtio-net.js';

/** How long the device model's shutdown waits for its netfronts to close. */
const CLOSE_WAIT_MS = 1000;
/** Netfront.connect's wait for the first connection: as long as the device model lives. */
const CONNECT_FOREVER_MS = 2 ** 31 - 1;

export interface EmulatedNic {
  devid: number;
  net: VirtioNet;
  /** Set once connected. */
  netfront: Netfront | null;
}

/** A VirtioNet per vif, its MAC read from our frontend directory (the key libxl writes). */
export async function emulatedNics(xs: XenstoreClient, self: DomId, devids: number[], memory: GuestMemory, log?: Logger): Promise<EmulatedNic[]> {
  const out: EmulatedNic[] = [];
  for (const devid of devids) {
    const dir = frontendPath(self, 'vif', devid);
    const text = await xs.tryRead(`${dir}/mac`);
    const mac = text === undefined ? null : parseMac(text);
    if (!mac) throw new XenError('EINVAL', `${dir}/mac = ${JSON.stringify(text)} is not a MAC address`);
    out.push({ devid, net: new VirtioNet({ mac, memory, ...(log ? { log } : {}) }), netfront: null });
  }
  return out;
}

/**
 * Connect the NICs' Netfronts in the background, each on its own: one whose
 * backend never answers does not hold up the others.  (Each maps its 514
 * pages in one call; the transport splits the replies of several into
 * frames it accepts, frameBatches in abi/frame.ts.)  Returns a function
 * that closes them.
 */
export function connectNics(o: { hv: HypervisorConnection; xs: XenstoreClient; self: DomId; log: Logger }, nics: EmulatedNic[]): () => Promise<void> {
  let closed = false;
  for (const nic of nics) {
    void (async () => {
      try {
        const nf = await Netfront.connect({ hv: o.hv, xs: o.xs, domid: o.self, devid: nic.devid, log: o.log, timeoutMs: CONNECT_FOREVER_MS });
        if (closed) return void (await nf.close().catch(() => undefined));
        nic.netfront = nf;
        nic.net.setLink(nf);
        o.log.info({ devid: nic.devid, backend: nf.backendId }, 'emulated NIC connected to netback');
      } catch (e) {
        o.log.error({ devid: nic.devid, err: (e as Error).message }, 'emulated NIC has no network: its netfront failed');
      }
    })();
  }
  return async () => {
    closed = true;
    // A courtesy to netback (the toolstack removes the vifs anyway): xenstored may be gone already (xenbox down), so do not wait long.
    const all = Promise.all(nics.map((n) => n.netfront?.close().catch(() => undefined)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  };
}
