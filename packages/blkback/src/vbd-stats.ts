/**
 * Per-vbd counters, named after Linux xen-blkback's (xen_blkif_ring st_*:
 * drivers/block/xen-blkback/common.h, exposed there in sysfs under
 * statistics/): kept in memory and logged, never written to xenstore.
 */
export interface VbdStats {
  /** st_rd_req / st_wr_req / st_f_req / st_ds_req: requests of each kind taken off the ring. */
  rdReq: number;
  wrReq: number;
  fReq: number;
  dsReq: number;
  /** st_rd_sect / st_wr_sect: 512-byte sectors moved. */
  rdSect: number;
  wrSect: number;
  /** Requests answered BLKIF_RSP_ERROR or BLKIF_RSP_EOPNOTSUPP. */
  errors: number;
  /**
   * st_oo_req: a request that had to wait because the backend had no room
   * for it.  Linux counts waits for a free pending_req; here a request
   * waits only when its id is still in flight (it is then refused, and
   * counted in `errors` too).
   */
  ooReq: number;
}

export function newVbdStats(): VbdStats {
  return { rdReq: 0, wrReq: 0, fReq: 0, dsReq: 0, rdSect: 0, wrSect: 0, errors: 0, ooReq: 0 };
}
