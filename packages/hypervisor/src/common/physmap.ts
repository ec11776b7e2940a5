/**
 * XENMEM_add_to_physmap for guests (xen/common/memory.c xenmem_add_to_physmap,
 * xen/arch/arm/mm.c xenmem_add_to_physmap_one): put a hypervisor page where
 * the guest asks, in its own RAM, as Xen-on-Arm guests do for shared_info
 * and grant frames (Linux: arch/arm/xen/enlighten.c xen_guest_init,
 * drivers/xen/grant-table.c gnttab_setup_auto_xlat_frames).
 *
 * xenbox's guest RAM is one SharedArrayBuffer its vCPUs run on, so "placing"
 * a page means its state moves into the RAM page at that gfn (the bytes the
 * guest then reads are the live shared_info or grant frame); the hypervisor
 * reads and writes it there from then on.
 */
import { XENMAPIDX_grant_table_status, XENMAPSPACE, XEN_PAGE_SIZE, XenError } from '@xenbox/abi';
import type { Domain } from './domain.js';

/** The guest's own populated RAM page at `gfn`, or EINVAL as Xen's p2m checks give. */
function ramPageOf(d: Domain, gfn: number, what: string) {
  const page = d.memory.isRamGfn(gfn) ? d.memory.page(gfn) : undefined;
  if (!page || !d.memory.ram) throw new XenError('EINVAL', `add_to_physmap ${what}: gfn 0x${gfn.toString(16)} is not populated RAM of d${d.domid}`);
  return page;
}

/** XENMAPSPACE_shared_info: idx must be 0 (there is one shared_info). */
export function placeSharedInfo(d: Domain, idx: number, gfn: number): void {
  if (idx !== 0) throw new XenError('EINVAL', `add_to_physmap shared_info: idx ${idx} (only 0)`);
  ramPageOf(d, gfn, 'shared_info');
  d.evtchn.placeSharedInfo(d.memory.ram!, (gfn - d.memory.ramBaseGfn) * XEN_PAGE_SIZE, gfn);
}

/** XENMAPSPACE_grant_table: frame idx of a v1 table (status frames are v2's: EINVAL). */
export function placeGrantFrame(d: Domain, idx: number, gfn: number): void {
  if (idx & XENMAPIDX_grant_table_status) throw new XenError('EINVAL', `add_to_physmap grant_table: status frames are for grant table v2; xenbox is v1`);
  if (idx >= d.grants.maxFrames) throw new XenError('EINVAL', `add_to_physmap grant_table: frame ${idx} is past max_grant_frames ${d.grants.maxFrames}`);
  d.grants.placeFrame(idx, gfn, ramPageOf(d, gfn, 'grant_table'));
}

/** xenmem_add_to_physmap_one() for the spaces xenbox guests use; others are ENOSYS, as on Arm. */
export function addToPhysmap(d: Domain, space: number, idx: number, gfn: number): void {
  if (d.isProcess) throw new XenError('EOPNOTSUPP', `add_to_physmap: d${d.domid} is a process domain; its pages are not guest RAM`);
  switch (space) {
    case XENMAPSPACE.shared_info:
      return placeSharedInfo(d, idx, gfn);
    case XENMAPSPACE.grant_table:
      return placeGrantFrame(d, idx, gfn);
    default:
      throw new XenError('ENOSYS', `add_to_physmap: space ${space} is not supported`);
  }
}
