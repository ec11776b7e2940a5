/**
 * HVM parameters (xen/include/public/hvm/hvm_op.h, hvm/params.h): how a
 * guest learns where its xenstore and console rings are, and how the
 * toolstack tells it (libxl's xc_hvm_param_set, libxl__build_post).  Xen on
 * Arm and xenbox RISC-V guests read them with HYPERVISOR_hvm_op
 * (HVMOP_get_param), as Linux's xen_guest_init() / xenbus_init() do.
 *
 * The guest-visible contract (docs/pv-guest-abi.md, "Start info"):
 *   - HVM_PARAM_STORE_PFN / STORE_EVTCHN: the xenstore ring page and the
 *     guest's port to xenstored (unbound, offered to xenstored's domain);
 *   - HVM_PARAM_CONSOLE_PFN / CONSOLE_EVTCHN: the console ring page and the
 *     guest's port to xenconsoled (dom0);
 *   - the two pages are the "magic pages" at the top of RAM, outside the
 *     device tree's /memory node (MAGIC_PAGES below);
 *   - grant refs 0 (console) and 1 (xenstore) are pre-filled for those
 *     pages (GNTTAB_RESERVED_CONSOLE / _XENSTORE), 0..7 are reserved.
 */
import type { DomId } from './domid.js';

/** HVMOP_* sub-ops of __HYPERVISOR_hvm_op (hvm_op.h). */
export const HVMOP = {
  set_param: 0,
  get_param: 1,
} as const;

/** HVM_PARAM_* indices (hvm/params.h). */
export const HVM_PARAM = {
  STORE_PFN: 1,
  STORE_EVTCHN: 2,
  CONSOLE_PFN: 17,
  CONSOLE_EVTCHN: 18,
} as const;

/** HVM_NR_PARAMS (params.h, Xen 4.17): an index at or past it is EINVAL. */
export const HVM_NR_PARAMS = 39;

/**
 * The magic pages a PVH guest's builder reserves at the top of its RAM, in
 * xc_dom_core's order (console first, then xenstore; Arm's
 * GUEST_MAGIC_BASE + CONSOLE_PFN_OFFSET / XENSTORE_PFN_OFFSET): pages
 * ramEnd - 2 and ramEnd - 1.  They are zeroed and not in /memory.
 */
export const MAGIC_PAGES = {
  count: 2,
  CONSOLE: 0,
  XENSTORE: 1,
} as const;

/** gfns of the magic pages of a guest whose RAM starts at `baseGfn` and has `pages` pages. */
export function magicPageGfns(baseGfn: number, pages: number): { console: number; xenstore: number; first: number } {
  const first = baseGfn + pages - MAGIC_PAGES.count;
  return { first, console: first + MAGIC_PAGES.CONSOLE, xenstore: first + MAGIC_PAGES.XENSTORE };
}

export type HvmParamIndex = number;

/** struct xen_hvm_param as a call from a domain process (domid may be DOMID_SELF). */
export interface HvmParamArgs {
  domid: DomId;
  index: HvmParamIndex;
}

/** `hvm.get_param` / `hvm.set_param` (HVMOP_get_param / HVMOP_set_param). */
export interface HvmParamHypercalls {
  'hvm.get_param': { args: HvmParamArgs; reply: { value: number } };
  'hvm.set_param': { args: HvmParamArgs & { value: number }; reply: null };
}
