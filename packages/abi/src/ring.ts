/**
 * Shared ring layout (xen/include/public/io/ring.h), pure functions.
 *
 *   struct X_sring { RING_IDX req_prod, req_event, rsp_prod, rsp_event;
 *                    uint8_t pvt[4]; uint8_t pad[44]; union X_sring_entry ring[]; }
 *
 * RING_IDX is a free-running uint32; slot = idx & (size - 1).
 */
import { XEN_PAGE_SIZE } from './memory.js';

export const RING_REQ_PROD_OFFSET = 0;
export const RING_REQ_EVENT_OFFSET = 4;
export const RING_RSP_PROD_OFFSET = 8;
export const RING_RSP_EVENT_OFFSET = 12;
export const RING_PVT_OFFSET = 16;
export const RING_HEADER_SIZE = 64;

/** __RING_SIZE: entries that fit after the header, rounded down to a power of two. */
export function ringSize(entrySize: number, pageBytes = XEN_PAGE_SIZE): number {
  if (!Number.isInteger(entrySize) || entrySize <= 0) throw new RangeError(`ring entry size ${entrySize} must be a positive integer`);
  const n = Math.floor((pageBytes - RING_HEADER_SIZE) / entrySize);
  if (n < 1) throw new RangeError(`a ${entrySize}-byte entry does not fit in ${pageBytes} bytes`);
  return 1 << (31 - Math.clz32(n));
}

/** uint32 subtraction, as RING_IDX arithmetic is. */
export function ringIdxSub(a: number, b: number): number {
  return (a - b) >>> 0;
}

/** Offset of slot `idx` in the shared page. */
export function ringSlotOffset(idx: number, size: number, entrySize: number): number {
  return RING_HEADER_SIZE + (idx & (size - 1)) * entrySize;
}

/**
 * The notify test of RING_PUSH_*_AND_CHECK_NOTIFY: notify iff the peer's
 * event index lies in (old, new], i.e. (new - event) < (new - old) as uint32.
 */
export function ringNeedsNotify(oldProd: number, newProd: number, event: number): boolean {
  return ringIdxSub(newProd, event) < ringIdxSub(newProd, oldProd);
}
