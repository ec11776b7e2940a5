/**
 * Grant tables for a domain process, like libxengnttab + libxengntshr:
 *
 * - the granting side writes real grant_entry_v1 records into its own
 *   grant-table frames (held as mirrors), and ends access with a
 *   compare-and-exchange, as gnttab_end_foreign_access_ref() does;
 * - the mapping side maps grants as MirrorPages (kept current by the
 *   event channel, see mirror.ts) and copies with batched GNTTABOP_copy —
 *   read()/write() carry the bytes in the call itself (xenbox's inline
 *   copy), so a backend moving data needs no own page and no mirror sync.
 * Own pages to grant come from the domain's memory (increase_reservation).
 */
import {
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST,
  GNTTAB_COPY_STRUCT,
  GNTTAB_NR_RESERVED_ENTRIES,
  GRANT_ENTRIES_PER_FRAME,
  GRANT_ENTRY_V1_SIZE,
  GTF_permit_access,
  GTF_readonly,
  GTF_reading,
  GTF_writing,
  GNTCOPY_xenbox_dest_buf,
  GNTCOPY_xenbox_source_buf,
  XEN_PAGE_SIZE,
  XenError,
  decodeGnttabCopyReply,
  encodeGnttabCopy,
  encodeGrantEntry,
  GnttabCopyStatuses,
  GnttabCopyWriter,
  gntstMessage,
  handOverBulk,
  type DomId,
  type GntStatus,
  type GnttabCopy,
  type GnttabCopyResult,
  type GrantRef,
} from '@xenbox/abi';
import type { HypervisorConnection } from './hypervisor-connection.js';
import { Mirrors, type MirrorPage } from './mirror.js';

/** One of the process's own pages: its gfn and its mirror. */
export interface OwnPage {
  gfn: number;
  page: MirrorPage;
}

export interface MappedGrant {
  status: GntStatus;
  handle: number;
  /** The mapped page (status okay only). */
  page: MirrorPage | null;
}

export class GrantError extends XenError {
  constructor(
    readonly status: GntStatus,
    what: string,
  ) {
    super('EIO', `${what}: ${gntstMessage(status)} (GNTST ${status})`);
  }
}

/** Allocate `n` of this domain's own pages and hold them as mirrors. */
export async function allocOwnPages(hv: HypervisorConnection, n: number): Promise<OwnPage[]> {
  const { gfns } = await hv.call('memory.increase_reservation', { domid: DOMID_SELF, nr_extents: n });
  if (gfns.length < n) throw new XenError('ENOMEM', `allocOwnPages: got ${gfns.length} of ${n} pages`);
  return mapOwnPages(hv, gfns);
}

/** Hold already-populated own gfns as mirrors. */
export async function mapOwnPages(hv: HypervisorConnection, gfns: number[]): Promise<OwnPage[]> {
  const mirrors = Mirrors.of(hv);
  const { pages } = await hv.call('mirror.map_own', { gfns });
  return pages.map((p) => ({ gfn: p.gfn, page: mirrors.adopt(p.mid, p.data, true, `own gfn 0x${p.gfn.toString(16)}`) }));
}

/** The granting side: a grant table of `nrFrames` frames. */
const SHARED_TABLE_FRAMES = 32;
const sharedTables = new WeakMap<HypervisorConnection, Promise<GrantTable>>();

export class GrantTable {
  private readonly free: GrantRef[] = [];

  private constructor(
    private readonly hv: HypervisorConnection,
    private readonly frames: OwnPage[],
  ) {
    for (let ref = frames.length * GRANT_ENTRIES_PER_FRAME - 1; ref >= GNTTAB_NR_RESERVED_ENTRIES; ref--) this.free.push(ref);
  }

  /**
   * The domain's grant table: one per connection, shared by every frontend
   * in the process (a domain has one table; two opened separately would hand
   * out the same refs).  Opened on first use with `nrFrames` frames
   * (default 32: 16,352 refs).
   */
  static of(hv: HypervisorConnection, nrFrames = SHARED_TABLE_FRAMES): Promise<GrantTable> {
    let t = sharedTables.get(hv);
    if (!t) {
      t = GrantTable.open(hv, nrFrames);
      sharedTables.set(hv, t);
      t.catch(() => sharedTables.delete(hv));
    }
    return t;
  }

  /** A table of its own (tests that want a fresh one); frontends use `of`. */
  static async open(hv: HypervisorConnection, nrFrames = 1): Promise<GrantTable> {
    const r = await hv.call('gnttab.setup_table', { dom: DOMID_SELF, nr_frames: nrFrames });
    if (r.status !== GNTST.okay) throw new GrantError(r.status, 'gnttab.setup_table');
    return new GrantTable(hv, await mapOwnPages(hv, r.frame_list));
  }

  private slot(ref: GrantRef): { frame: OwnPage; offset: number } {
    const frame = this.frames[Math.floor(ref / GRANT_ENTRIES_PER_FRAME)];
    if (!frame) throw new XenError('EINVAL', `grant ref ${ref} is outside the table`);
    return { frame, offset: (ref % GRANT_ENTRIES_PER_FRAME) * GRANT_ENTRY_V1_SIZE };
  }

  /** gnttab_grant_foreign_access(): let `domid` use our `gfn`; published at the next flush/notify. */
  grantAccess(domid: DomId, gfn: number, readonly = false): GrantRef {
    const ref = this.free.pop();
    if (ref === undefined) throw new XenError('ENOSPC', 'no free grant references');
    this.writeEntry(ref, domid, gfn, GTF_permit_access | (readonly ? GTF_readonly : 0));
    return ref;
  }

  /** Write an entry at a chosen ref (the reserved console/xenstore refs). */
  writeEntry(ref: GrantRef, domid: DomId, gfn: number, flags: number): void {
    const { frame, offset } = this.slot(ref);
    // domid and frame first, flags last: Xen's "write barrier, then flags" order.
    frame.page.write(offset + 2, encodeGrantEntry({ flags: 0, domid, frame: gfn }).subarray(2));
    frame.page.setU16(offset, flags);
  }

  /** Flags of an entry as last seen (GTF_reading/GTF_writing tell whether it is in use). */
  flags(ref: GrantRef): number {
    const { frame, offset } = this.slot(ref);
    return frame.page.u16(offset);
  }

  /** Publish entries written since the last flush. */
  async publish(): Promise<void> {
    await Mirrors.of(this.hv).sync(this.frames.map((f) => f.page));
  }

  /**
   * gnttab_end_foreign_access_ref(): revoke unless the grant is mapped or
   * being copied (GTF_reading/GTF_writing), atomically in the hypervisor.
   * Returns false when in use (try again later).
   */
  async endAccess(ref: GrantRef): Promise<boolean> {
    const { frame, offset } = this.slot(ref);
    await this.publish();
    const flags = frame.page.u16(offset);
    if (flags & (GTF_reading | GTF_writing)) return false;
    const old = await this.hv.call('memory.cmpxchg', { gfn: frame.gfn, offset, size: 2, expected: flags, value: 0 });
    if (old !== flags) return false;
    frame.page.poke(offset, new Uint8Array(2));
    this.free.push(ref);
    return true;
  }
}

/** The mapping side (a backend). */
export class GrantMapper {
  private readonly mirrors: Mirrors;

  constructor(private readonly hv: HypervisorConnection) {
    this.mirrors = Mirrors.of(hv);
  }

  /** Map grants (batched GNTTABOP_map_grant_ref); a status per entry. */
  async map(grants: Array<{ dom: DomId; ref: GrantRef; readonly?: boolean }>): Promise<MappedGrant[]> {
    const ops = grants.map((g) => ({ dom: g.dom, ref: g.ref, flags: GNTMAP_host_map | (g.readonly ? GNTMAP_readonly : 0) }));
    const results = await this.hv.call('gnttab.map_grant_ref', { ops });
    return results.map((r, i) => ({
      status: r.status,
      handle: r.handle,
      page: r.status === GNTST.okay && r.mid !== undefined && r.data ? this.mirrors.adopt(r.mid, r.data, !grants[i]!.readonly, `d${grants[i]!.dom} ref ${grants[i]!.ref}`) : null,
    }));
  }

  /** Map one grant or throw GrantError. */
  async mapOne(dom: DomId, ref: GrantRef, readonly = false): Promise<{ handle: number; page: MirrorPage }> {
    const [r] = await this.map([{ dom, ref, readonly }]);
    if (!r || r.status !== GNTST.okay || !r.page) throw new GrantError(r?.status ?? GNTST.general_error, `map d${dom} ref ${ref}`);
    return { handle: r.handle, page: r.page };
  }

  async unmap(mapped: Array<{ handle: number; page?: MirrorPage | null }>): Promise<GntStatus[]> {
    for (const m of mapped) {
      if (!m.page) continue;
      if (!m.page.revoked && m.page.isDirty) m.page.flush();
      this.mirrors.drop(m.page.mid, 'unmapped');
    }
    const results = await this.hv.call('gnttab.unmap_grant_ref', { ops: mapped.map((m) => ({ handle: m.handle })) });
    return results.map((r) => r.status);
  }

  /** Batched GNTTABOP_copy: flushes own-page mirrors first; a status per op. */
  async copy(ops: GnttabCopy[]): Promise<GntStatus[]> {
    return (await this.copyResults(ops)).map((r) => r.status);
  }

  /** Batched GNTTABOP_copy with the full results (`data` for an `{inline: true}` dest). */
  async copyResults(ops: GnttabCopy[]): Promise<GnttabCopyResult[]> {
    const { args, destAt } = encodeGnttabCopy(ops);
    this.mirrors.flush();
    return decodeGnttabCopyReply(await this.hv.call('gnttab.copy', args), ops, destAt);
  }

  /**
   * Read granted bytes into this process in one batched copy (xenbox's
   * message-buffer dest, @xenbox/abi gnttab-copy.ts): no own page in
   * between.  `data` is null where the status is not okay.
   */
  async read(segs: Array<{ dom: DomId; ref: GrantRef; offset?: number; len?: number }>): Promise<Array<{ status: GntStatus; data: Uint8Array | null }>> {
    // Written straight into struct gnttab_copy, not through op objects: this is every backend's data path.
    const w = new GnttabCopyWriter(segs.length);
    const at = new Int32Array(segs.length);
    let pos = 0;
    segs.forEach((s, i) => {
      const offset = s.offset ?? 0;
      const len = s.len ?? XEN_PAGE_SIZE - offset;
      at[i] = pos;
      w.set(i, s.ref, s.dom, offset, pos, DOMID_SELF, 0, len, GNTCOPY_source_gref | GNTCOPY_xenbox_dest_buf);
      pos += len;
    });
    this.mirrors.flush();
    const r = await this.hv.call('gnttab.copy', { ops: w.ops });
    const statuses = new GnttabCopyStatuses(r.status, segs.length);
    return segs.map((s, i) => {
      const status = statuses.get(i);
      const len = s.len ?? XEN_PAGE_SIZE - (s.offset ?? 0);
      return { status, data: status === GNTST.okay && r.data ? r.data.subarray(at[i]!, at[i]! + len) : null };
    });
  }

  /** Write bytes from this process into granted pages in one batched copy (xenbox's message-buffer source); a status per segment. */
  async write(segs: Array<{ dom: DomId; ref: GrantRef; offset?: number; data: Uint8Array }>): Promise<GntStatus[]> {
    let total = 0;
    for (const s of segs) total += s.data.byteLength;
    // One buffer, the bytes then the op array, handed to the transport: the
    // call's bulk part is this buffer as is (@xenbox/abi frame-bulk.ts), not
    // a second copy of every byte.
    const opBytes = segs.length * GNTTAB_COPY_STRUCT.size;
    const buf = handOverBulk(Buffer.allocUnsafeSlow(total + opBytes));
    const w = new GnttabCopyWriter(segs.length, buf.subarray(total));
    let pos = 0;
    segs.forEach((s, i) => {
      buf.set(s.data, pos);
      w.set(i, pos, DOMID_SELF, 0, s.ref, s.dom, s.offset ?? 0, s.data.byteLength, GNTCOPY_dest_gref | GNTCOPY_xenbox_source_buf);
      pos += s.data.byteLength;
    });
    this.mirrors.flush();
    // data before ops: msgpack writes them in this order, so they are one run of buf.
    const r = await this.hv.call('gnttab.copy', { data: buf.subarray(0, total), ops: w.ops });
    const statuses = new GnttabCopyStatuses(r.status, segs.length);
    return segs.map((_, i) => statuses.get(i));
  }
}
