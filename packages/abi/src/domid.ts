/**
 * Domain ids, from xen/include/public/xen.h.  domid_t is a uint16; ids from
 * DOMID_FIRST_RESERVED upwards are never allocated to a domain.
 */
export type DomId = number;

export const DOMID_DOM0 = 0;
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;
export const DOMID_IO = 0x7ff1;
export const DOMID_XEN = 0x7ff2;
export const DOMID_COW = 0x7ff3;
export const DOMID_INVALID = 0x7ff4;
export const DOMID_ANY = 0x7ff5;
export const DOMID_IDLE = 0x7fff;

export function isValidDomId(d: unknown): d is DomId {
  return typeof d === 'number' && Number.isInteger(d) && d >= 0 && d < DOMID_FIRST_RESERVED;
}
