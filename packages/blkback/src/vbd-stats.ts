/**
 * Per-vbd counters, named after Linux xen-blkback's (xen_blkif_ring st_*:
 * drivers/block/xen-blkback/common.h, exposed there in sysfs under
 * statistics/): kept in memory, logged, and published once a second under
 * the backend directory's statistics/ (abi BLKIF_STAT_NAMES) for dom0 tools.
 */
import { BLKIF_STATS_DIR, BLKIF_STAT_NAMES, type BlkifStatName } from '@xenbox/abi';
import type { XenstoreClient } from '@xenbox/libxen';

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

/** The counters as xentop names them (abi BLKIF_STAT_NAMES). */
export function statValues(s: VbdStats): Record<BlkifStatName, number> {
  return { oo_req: s.ooReq, rd_req: s.rdReq, wr_req: s.wrReq, f_req: s.fReq, ds_req: s.dsReq, rd_sect: s.rdSect, wr_sect: s.wrSect };
}

/** Write a vbd's counters under its backend directory (for `xl top` and `xenbox chaos --plot`). */
export async function publishVbdStats(xs: XenstoreClient, backendDir: string, s: VbdStats): Promise<void> {
  const values = statValues(s);
  await xs.transaction(async (t) => {
    for (const n of BLKIF_STAT_NAMES) await t.write(`${backendDir}/${BLKIF_STATS_DIR}/${n}`, String(values[n]));
  });
}
