/**
 * A PVH guest's way to xenstored and xenconsoled, as libxl and libxenguest
 * build it (tools/libs/guest/xg_dom_core.c alloc_magic_pages,
 * xc_dom_gnttab_seed(); tools/libs/light/libxl_dom.c libxl__build_post;
 * libxl_console.c for the primary console):
 *
 *   magic pages at the top of RAM (console, then xenstore), zeroed, outside
 *   the device tree's /memory (guest-image.ts)
 *   -> an unbound port in the guest for each, offered to xenconsoled's
 *      domain (dom0) and to xenstored's domain
 *   -> grant refs GNTTAB_RESERVED_CONSOLE / _XENSTORE for the pages
 *   -> HVM params STORE_PFN/EVTCHN, CONSOLE_PFN/EVTCHN
 *   -> /local/domain/<d>/{console,store}, /vm/<uuid>, then
 *      INTRODUCE(domid, gfn, port) to xenstored (@introduceDomain, which
 *      is also how xenconsoled notices the new console).
 *
 * The guest finds everything with HVMOP_get_param (docs/pv-guest-abi.md,
 * "Start info").
 */
import {
  DOMID_DOM0,
  GNTTAB_RESERVED_CONSOLE,
  GNTTAB_RESERVED_XENSTORE,
  GRANT_ENTRY_V1_SIZE,
  GTF_permit_access,
  GUEST_RAM_BASE_GFN,
  HVM_PARAM,
  XENCONSOLE_DISCONNECTED,
  XENCONS_RING,
  XENSTORE_RING,
  XEN_PAGE_SIZE,
  XenError,
  encodeGrantEntry,
  magicPageGfns,
  type DomId,
} from '@xenbox/abi';
import type { HypervisorConnection, XenstoreClient, XsPerm } from '@xenbox/libxen';
import { domainPath } from './domain-xenstore.js';

/** LIBXL_XENCONSOLE_LIMIT: the console/limit xenconsoled buffers up to (libxl_internal.h). */
export const XENCONSOLE_LIMIT = 1048576;

export interface DomainRings {
  consoleGfn: number;
  consolePort: number;
  storeGfn: number;
  storePort: number;
  /** xenstored's domain, the store port's remote end. */
  storeDomid: DomId;
}

export interface RingGuest {
  domid: DomId;
  name: string;
  uuid: string;
  memBytes: number;
  kernel?: string;
  cmdline?: string;
}

/** The domain serving xenstore: the live xs_domain (the supervisor's xenstored), else dom0. */
export async function xenstoreDomid(hv: HypervisorConnection): Promise<DomId> {
  const all = await hv.call('sysctl.getdomaininfolist', {});
  return all.find((d) => d.flags.includes('xs_domain') && !d.dying)?.domid ?? DOMID_DOM0;
}

/**
 * Everything in the hypervisor: pages, ports, grants, params.  Then, with a
 * xenstore connection, the nodes and INTRODUCE.  Called while the guest is
 * still paused; a failure leaves the caller to destroy the domain.
 */
export async function buildDomainRings(hv: HypervisorConnection, xs: XenstoreClient | null, g: RingGuest): Promise<DomainRings> {
  const rings = await seedRings(hv, g);
  if (xs) {
    await publishRings(xs, g, rings);
    await untilStoreServed(hv, g.domid, rings.storeGfn);
  }
  return rings;
}

/** How long the builder waits for xenstored to take a new guest's ring. */
const STORE_SERVED_TIMEOUT_MS = 5000;

/**
 * C xenstored maps the ring and writes server_features before it answers
 * INTRODUCE, so a guest unpaused after it finds its ring served.  xenbox's
 * xenstored answers first and maps after (its hypercalls are messages), so
 * the builder waits for server_features to appear before going on.
 */
async function untilStoreServed(hv: HypervisorConnection, domid: DomId, gfn: number): Promise<void> {
  const deadline = Date.now() + STORE_SERVED_TIMEOUT_MS;
  for (;;) {
    const v = await hv.call('foreign.read', { domid, gfn, offset: XENSTORE_RING.SERVER_FEATURES, len: 4 });
    if (new DataView(v.buffer, v.byteOffset, 4).getUint32(0, true) !== 0) return;
    if (Date.now() > deadline) throw new XenError('ETIMEDOUT', `d${domid}: xenstored did not take the xenstore ring within ${STORE_SERVED_TIMEOUT_MS} ms (see its log)`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function seedRings(hv: HypervisorConnection, g: RingGuest): Promise<DomainRings> {
  const { domid } = g;
  const pages = Math.floor(g.memBytes / XEN_PAGE_SIZE);
  const magic = magicPageGfns(GUEST_RAM_BASE_GFN, pages);
  // xc_dom_core clear_page(): the builder hands the guest zeroed magic pages; the console starts disconnected (console.h).
  for (const gfn of [magic.console, magic.xenstore]) await hv.call('foreign.write', { domid, gfn, offset: 0, data: new Uint8Array(XEN_PAGE_SIZE) });
  await hv.call('foreign.write', { domid, gfn: magic.console, offset: XENCONS_RING.CONNECTION, data: Uint8Array.of(XENCONSOLE_DISCONNECTED) });
  const storeDomid = await xenstoreDomid(hv);
  // libxl__build_pre: alloc_unbound on the guest's behalf, offered to the console and store domains.
  const consolePort = (await hv.call('evtchn.alloc_unbound', { dom: domid, remote_dom: DOMID_DOM0 })).port;
  const storePort = (await hv.call('evtchn.alloc_unbound', { dom: domid, remote_dom: storeDomid })).port;
  await seedGrants(hv, domid, [
    { ref: GNTTAB_RESERVED_CONSOLE, domid: DOMID_DOM0, gfn: magic.console },
    { ref: GNTTAB_RESERVED_XENSTORE, domid: storeDomid, gfn: magic.xenstore },
  ]);
  const params: Array<[number, number]> = [
    [HVM_PARAM.STORE_PFN, magic.xenstore],
    [HVM_PARAM.STORE_EVTCHN, storePort],
    [HVM_PARAM.CONSOLE_PFN, magic.console],
    [HVM_PARAM.CONSOLE_EVTCHN, consolePort],
  ];
  for (const [index, value] of params) await hv.call('hvm.set_param', { domid, index, value });
  return { consoleGfn: magic.console, consolePort, storeGfn: magic.xenstore, storePort, storeDomid };
}

/**
 * xc_dom_gnttab_seed(): entries in the guest's grant frame 0 before it runs.
 * The frame is the hypervisor's until the guest places it with
 * XENMAPSPACE_grant_table, which carries the entries over (grant-table.ts
 * placeFrame()).
 */
export async function seedGrants(hv: HypervisorConnection, domid: DomId, entries: Array<{ ref: number; domid: DomId; gfn: number }>): Promise<void> {
  const table = await hv.call('gnttab.setup_table', { dom: domid, nr_frames: 1 });
  const frame = table.frame_list[0];
  if (table.status !== 0 || frame === undefined) throw new XenError('EIO', `d${domid}: cannot reach its grant table to seed it (GNTST ${table.status})`);
  for (const e of entries) {
    const data = encodeGrantEntry({ flags: GTF_permit_access, domid: e.domid, frame: e.gfn });
    await hv.call('foreign.write', { domid, gfn: frame, offset: e.ref * GRANT_ENTRY_V1_SIZE, data });
  }
}

/** libxl's roperm: dom0 owns it, the domain may read. */
const roperm = (domid: DomId): XsPerm[] => [
  { id: DOMID_DOM0, perm: 'n' },
  { id: domid, perm: 'r' },
];

/** libxl__build_post + the primary console's frontend nodes + /vm/<uuid> (libxl__domain_make), then INTRODUCE. */
async function publishRings(xs: XenstoreClient, g: RingGuest, r: DomainRings): Promise<void> {
  const base = domainPath(g.domid);
  const vm = `/vm/${g.uuid}`;
  await xs.transaction(async (t) => {
    const put = async (path: string, value: string) => {
      await t.write(path, value);
      await t.setPerms(path, roperm(g.domid));
    };
    for (const dir of [`${base}/console`, `${base}/store`, vm, `${vm}/image`]) {
      await t.mkdir(dir);
      await t.setPerms(dir, roperm(g.domid));
    }
    await put(`${base}/console/ring-ref`, String(r.consoleGfn));
    await put(`${base}/console/port`, String(r.consolePort));
    await put(`${base}/console/limit`, String(XENCONSOLE_LIMIT));
    await put(`${base}/console/type`, 'xenconsoled');
    await put(`${base}/console/output`, 'pty');
    await put(`${base}/console/tty`, '');
    await put(`${base}/store/ring-ref`, String(r.storeGfn));
    await put(`${base}/store/port`, String(r.storePort));
    await put(`${base}/vm`, vm);
    await put(`${vm}/uuid`, g.uuid);
    await put(`${vm}/name`, g.name);
    await put(`${vm}/start_time`, (Date.now() / 1000).toFixed(2));
    await put(`${vm}/image/ostype`, 'pvh');
    if (g.kernel) await put(`${vm}/image/kernel`, g.kernel);
    await put(`${vm}/image/cmdline`, g.cmdline ?? '');
  });
  // xs_introduce_domain(): xenstored maps grant ref 1 and binds the port.
  await xs.introduce(g.domid, { gfn: r.storeGfn, evtchn: r.storePort });
}

/**
 * After xenstored restarted as a new domain (docs/xenstored.md "Restarts"):
 * every PVH guest's store port went back to unbound when the old xenstored
 * domain died, and grant ref 1 still names that domain.  Re-offer the same
 * port (evtchn.reoffer: the guest keeps the port HVM_PARAM_STORE_EVTCHN
 * gave it), re-point grant ref 1, and INTRODUCE the guest again, which makes
 * the new xenstored map the ring and bind the port.  Returns the guests
 * reconnected.
 */
export async function reconnectStoreRings(hv: HypervisorConnection, xs: XenstoreClient): Promise<DomId[]> {
  const storeDomid = await xenstoreDomid(hv);
  const done: DomId[] = [];
  for (const d of await hv.call('sysctl.getdomaininfolist', {})) {
    if (d.kind !== 'pvh' || d.dying) continue;
    const base = `${domainPath(d.domid)}/store`;
    const gfnText = await xs.read(`${base}/ring-ref`).catch(() => null);
    const portText = await xs.read(`${base}/port`).catch(() => null);
    if (!gfnText || !portText) continue;
    const gfn = Number(gfnText);
    const port = Number(portText);
    const st = await hv.call('evtchn.status', { dom: d.domid, port });
    if (st.status === 'unbound' && st.dom !== storeDomid) await hv.call('evtchn.reoffer', { dom: d.domid, port, remote_dom: storeDomid });
    await seedGrants(hv, d.domid, [{ ref: GNTTAB_RESERVED_XENSTORE, domid: storeDomid, gfn }]);
    await xs.introduce(d.domid, { gfn, evtchn: port });
    done.push(d.domid);
  }
  return done;
}
