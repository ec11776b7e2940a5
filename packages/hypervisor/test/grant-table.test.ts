import { describe, expect, it } from 'vitest';
import {
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST,
  GTF_permit_access,
  GTF_readonly,
  GTF_reading,
  GTF_writing,
  GNTTAB_FRAMES_BASE_GFN,
  encodeGrantEntry,
} from '@xenbox/abi';
import { makeHypervisor } from './hv-harness.js';

/** A granter with one grant-table frame and one own page; returns helpers to write entries. */
function setup() {
  const t = makeHypervisor();
  const granter = t.newDomain('front');
  const mapper = t.newDomain('back');
  const other = t.newDomain('other');
  expect(t.call(granter, 'gnttab.setup_table', { dom: DOMID_SELF, nr_frames: 1 })).toEqual({ status: GNTST.okay, frame_list: [GNTTAB_FRAMES_BASE_GFN] });
  const [gfn] = t.call(granter, 'memory.increase_reservation', { domid: DOMID_SELF, nr_extents: 1 }).gfns;
  t.call(granter, 'memory.write', { gfn, offset: 0, data: new TextEncoder().encode('hello grant') });
  const grant = (ref: number, domid: number, frame: number, flags: number) =>
    t.call(granter, 'memory.write', { gfn: GNTTAB_FRAMES_BASE_GFN, offset: ref * 8, data: encodeGrantEntry({ flags, domid, frame }) });
  const flagsOf = (ref: number) => {
    const b = t.call(granter, 'memory.read', { gfn: GNTTAB_FRAMES_BASE_GFN, offset: ref * 8, len: 2 }) as Uint8Array;
    return b[0]! | (b[1]! << 8);
  };
  const map = (domid: number, ref: number, flags = GNTMAP_host_map, dom = granter) => t.call(domid, 'gnttab.map_grant_ref', { ops: [{ flags, ref, dom }] })[0];
  return { ...t, granter, mapper, other, gfn: gfn as number, grant, flagsOf, map };
}

describe('grant table setup', () => {
  it('reports its size and refuses more frames than max_grant_frames', () => {
    const t = setup();
    expect(t.call(t.granter, 'gnttab.query_size', { dom: DOMID_SELF })).toEqual({ nr_frames: 1, max_nr_frames: 64, status: GNTST.okay });
    expect(t.call(t.granter, 'gnttab.setup_table', { dom: DOMID_SELF, nr_frames: 65 }).status).toBe(GNTST.general_error);
  });
  it('answers bad_domain and permission_denied for other domains', () => {
    const t = setup();
    expect(t.call(t.mapper, 'gnttab.query_size', { dom: 4000 }).status).toBe(GNTST.bad_domain);
    expect(t.call(t.mapper, 'gnttab.query_size', { dom: t.granter }).status).toBe(GNTST.permission_denied);
    expect(t.call(t.mapper, 'gnttab.setup_table', { dom: t.granter, nr_frames: 2 }).status).toBe(GNTST.permission_denied);
    expect(t.call(0, 'gnttab.query_size', { dom: t.granter }).status).toBe(GNTST.okay);
  });
});

describe('map_grant_ref', () => {
  it('maps a grant made for the caller, hands back the page, and sets GTF_reading|GTF_writing', () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const r = t.map(t.mapper, 8);
    expect(r.status).toBe(GNTST.okay);
    expect(new TextDecoder().decode(r.data.subarray(0, 11))).toBe('hello grant');
    expect(t.flagsOf(8)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
    expect(t.call(t.mapper, 'gnttab.unmap_grant_ref', { ops: [{ handle: r.handle }] })).toEqual([{ status: GNTST.okay }]);
    expect(t.flagsOf(8)).toBe(GTF_permit_access);
  });
  it('a domain cannot map a grant made for another domain (GNTST_general_error, as _set_status_v1 says)', () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    expect(t.map(t.other, 8).status).toBe(GNTST.general_error);
    expect(t.flagsOf(8)).toBe(GTF_permit_access); // nothing changed
  });
  it('refuses a writable map of a read-only grant, and maps it read-only', () => {
    const t = setup();
    t.grant(9, t.mapper, t.gfn, GTF_permit_access | GTF_readonly);
    expect(t.map(t.mapper, 9).status).toBe(GNTST.general_error);
    const r = t.map(t.mapper, 9, GNTMAP_host_map | GNTMAP_readonly);
    expect(r.status).toBe(GNTST.okay);
    expect(t.flagsOf(9)).toBe(GTF_permit_access | GTF_readonly | GTF_reading);
    expect(t.errnoOf(() => t.call(t.mapper, 'mirror.flush', { writes: [{ mid: r.mid, offset: 0, data: new Uint8Array(1) }] }))).toBe('EACCES');
  });
  it('gives each failure its GNTST code', () => {
    const t = setup();
    t.grant(10, t.mapper, 0xdead, GTF_permit_access); // frame not populated
    t.grant(11, t.mapper, t.gfn, 0); // GTF_invalid
    expect(t.map(t.mapper, 8, 0).status).toBe(GNTST.bad_gntref); // neither host nor device map
    expect(t.map(t.mapper, 8, GNTMAP_host_map, 4000).status).toBe(GNTST.bad_domain);
    expect(t.map(t.mapper, 512).status).toBe(GNTST.bad_gntref); // past the one frame
    expect(t.map(t.mapper, 10).status).toBe(GNTST.bad_page);
    expect(t.flagsOf(10)).toBe(GTF_permit_access);
    expect(t.map(t.mapper, 11).status).toBe(GNTST.general_error);
    expect(t.call(t.mapper, 'gnttab.unmap_grant_ref', { ops: [{ handle: 77 }, { handle: 1 << 30 }] })).toEqual([{ status: GNTST.bad_handle }, { status: GNTST.bad_handle }]);
  });
  it('answers a batch with a status per entry', () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const rs = t.call(t.mapper, 'gnttab.map_grant_ref', { ops: [{ flags: GNTMAP_host_map, ref: 8, dom: t.granter }, { flags: GNTMAP_host_map, ref: 9, dom: t.granter }] });
    expect(rs.map((r: { status: number }) => r.status)).toEqual([GNTST.okay, GNTST.general_error]);
  });
  it('stops at the maptrack limit with no_device_space', () => {
    const t = setup();
    const tiny = t.newDomain('tiny', 'service', { max_maptrack_frames: 0 });
    t.grant(8, tiny, t.gfn, GTF_permit_access);
    expect(t.map(tiny, 8).status).toBe(GNTST.no_device_space);
  });
  it('refuses malformed batches with EINVAL', () => {
    const t = setup();
    expect(t.errnoOf(() => t.call(t.mapper, 'gnttab.map_grant_ref', { ops: 'x' }))).toBe('EINVAL');
    expect(t.errnoOf(() => t.call(t.mapper, 'gnttab.map_grant_ref', { ops: [{ flags: -1, ref: 0, dom: 0 }] }))).toBe('EINVAL');
  });
});

describe('copy', () => {
  it('copies from a grant into an own frame, and from an own frame into a grant', () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const [mine] = t.call(t.mapper, 'memory.increase_reservation', { domid: DOMID_SELF, nr_extents: 1 }).gfns;
    const rs = t.call(t.mapper, 'gnttab.copy', {
      ops: [
        { source: { ref: 8, domid: t.granter, offset: 0 }, dest: { gmfn: mine, domid: DOMID_SELF, offset: 100 }, len: 11, flags: GNTCOPY_source_gref },
        { source: { gmfn: mine, domid: DOMID_SELF, offset: 100 }, dest: { ref: 8, domid: t.granter, offset: 2000 }, len: 5, flags: GNTCOPY_dest_gref },
      ],
    });
    expect(rs).toEqual([{ status: GNTST.okay }, { status: GNTST.okay }]);
    expect(new TextDecoder().decode(t.call(t.mapper, 'memory.read', { gfn: mine, offset: 100, len: 11 }))).toBe('hello grant');
    expect(new TextDecoder().decode(t.call(t.granter, 'memory.read', { gfn: t.gfn, offset: 2000, len: 5 }))).toBe('hello');
    expect(t.flagsOf(8)).toBe(GTF_permit_access); // a copy's pin does not outlive it
  });
  it('refuses a copy past the page end with bad_copy_arg, and each other misuse with its code', () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    t.grant(9, t.mapper, t.gfn, GTF_permit_access | GTF_readonly);
    const [mine] = t.call(t.mapper, 'memory.increase_reservation', { domid: DOMID_SELF, nr_extents: 1 }).gfns;
    const own = (offset = 0) => ({ gmfn: mine, domid: DOMID_SELF, offset });
    const ref = (r: number, offset = 0, domid = t.granter) => ({ ref: r, domid, offset });
    const copy = (op: object) => t.call(t.mapper, 'gnttab.copy', { ops: [op] })[0].status;
    expect(copy({ source: ref(8, 4000), dest: own(), len: 200, flags: GNTCOPY_source_gref })).toBe(GNTST.bad_copy_arg);
    expect(copy({ source: ref(8), dest: own(4095), len: 2, flags: GNTCOPY_source_gref })).toBe(GNTST.bad_copy_arg);
    expect(copy({ source: { gmfn: t.gfn, domid: t.granter, offset: 0 }, dest: own(), len: 1, flags: 0 })).toBe(GNTST.permission_denied);
    expect(copy({ source: ref(8, 0, 4000), dest: own(), len: 1, flags: GNTCOPY_source_gref })).toBe(GNTST.bad_domain);
    expect(copy({ source: ref(600), dest: own(), len: 1, flags: GNTCOPY_source_gref })).toBe(GNTST.bad_gntref);
    expect(copy({ source: own(), dest: ref(9), len: 1, flags: GNTCOPY_dest_gref })).toBe(GNTST.general_error); // write to r/o grant
    expect(copy({ source: { gmfn: 0x999, domid: DOMID_SELF, offset: 0 }, dest: own(), len: 1, flags: 0 })).toBe(GNTST.bad_page);
    expect(t.call(t.other, 'gnttab.copy', { ops: [{ source: ref(8), dest: { gmfn: 0, domid: DOMID_SELF, offset: 0 }, len: 1, flags: GNTCOPY_source_gref }] })[0].status).toBe(GNTST.general_error);
  });
});

describe('copy with the bytes in the message (xenbox inline extension)', () => {
  it('returns a grant\'s bytes in the result (inline dest) and writes given bytes into a grant (source bytes)', () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const rs = t.call(t.mapper, 'gnttab.copy', {
      ops: [
        { source: { ref: 8, domid: t.granter, offset: 0 }, dest: { inline: true, domid: DOMID_SELF, offset: 0 }, len: 5, flags: GNTCOPY_source_gref },
        { source: { bytes: new TextEncoder().encode('xenbox'), domid: DOMID_SELF, offset: 0 }, dest: { ref: 8, domid: t.granter, offset: 3000 }, len: 6, flags: GNTCOPY_dest_gref },
        { source: { ref: 8, domid: t.granter, offset: 3000 }, dest: { inline: true, domid: DOMID_SELF, offset: 10 }, len: 6, flags: GNTCOPY_source_gref },
      ],
    });
    expect(rs.map((r: { status: number }) => r.status)).toEqual([GNTST.okay, GNTST.okay, GNTST.okay]);
    expect(new TextDecoder().decode(rs[0].data)).toBe('hello');
    expect(new TextDecoder().decode(rs[2].data)).toBe('xenbox');
    expect(rs[1].data).toBeUndefined();
    expect(new TextDecoder().decode(t.call(t.granter, 'memory.read', { gfn: t.gfn, offset: 3000, len: 6 }))).toBe('xenbox');
    expect(t.flagsOf(8)).toBe(GTF_permit_access); // the pin lasts only for the copy
  });
  it("keeps every check of Xen's copy, with the same GNTST codes", () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    t.grant(9, t.mapper, t.gfn, GTF_permit_access | GTF_readonly);
    t.grant(10, t.other, t.gfn, GTF_permit_access);
    const inline = (offset = 0, domid = DOMID_SELF) => ({ inline: true, domid, offset });
    const bytes = (n: number, domid = DOMID_SELF) => ({ bytes: new Uint8Array(n), domid, offset: 0 });
    const ref = (r: number, offset = 0, domid = t.granter) => ({ ref: r, domid, offset });
    const copy = (op: object) => t.call(t.mapper, 'gnttab.copy', { ops: [op] })[0];
    expect(copy({ source: ref(8, 4000), dest: inline(), len: 200, flags: GNTCOPY_source_gref })).toEqual({ status: GNTST.bad_copy_arg });
    expect(copy({ source: ref(8), dest: inline(4095), len: 2, flags: GNTCOPY_source_gref })).toEqual({ status: GNTST.bad_copy_arg });
    expect(copy({ source: bytes(2), dest: ref(8, 4095), len: 2, flags: GNTCOPY_dest_gref }).status).toBe(GNTST.bad_copy_arg);
    expect(copy({ source: bytes(3), dest: ref(8), len: 2, flags: GNTCOPY_dest_gref }).status).toBe(GNTST.bad_copy_arg); // bytes must be len long
    expect(copy({ source: bytes(1), dest: ref(9), len: 1, flags: GNTCOPY_dest_gref }).status).toBe(GNTST.general_error); // r/o grant
    expect(copy({ source: ref(10), dest: inline(), len: 1, flags: GNTCOPY_source_gref }).status).toBe(GNTST.general_error); // another domid's grant
    expect(copy({ source: ref(600), dest: inline(), len: 1, flags: GNTCOPY_source_gref }).status).toBe(GNTST.bad_gntref);
    expect(copy({ source: ref(8, 0, 4000), dest: inline(), len: 1, flags: GNTCOPY_source_gref }).status).toBe(GNTST.bad_domain);
    expect(copy({ source: ref(8), dest: inline(0, t.granter), len: 1, flags: GNTCOPY_source_gref }).status).toBe(GNTST.permission_denied); // a buffer is only one's own
    expect(copy({ source: bytes(1, t.granter), dest: ref(8), len: 1, flags: GNTCOPY_dest_gref }).status).toBe(GNTST.permission_denied);
    expect(copy({ source: ref(8), dest: { ...inline(), ref: 8, domid: t.granter }, len: 1, flags: GNTCOPY_source_gref | GNTCOPY_dest_gref }).status).toBe(GNTST.general_error); // a grant side is not a buffer
    expect(t.errnoOf(() => copy({ source: ref(8), dest: { inline: 'yes', domid: DOMID_SELF, offset: 0 }, len: 1, flags: GNTCOPY_source_gref }))).toBe('EINVAL');
    expect(t.errnoOf(() => copy({ source: { bytes: 'abc', domid: DOMID_SELF, offset: 0 }, dest: ref(8), len: 3, flags: GNTCOPY_dest_gref }))).toBe('EINVAL');
    expect(t.errnoOf(() => copy({ source: bytes(8192), dest: ref(8), len: 1, flags: GNTCOPY_dest_gref }))).toBe('E2BIG');
    expect(t.errnoOf(() => copy({ source: ref(8), dest: { bytes: new Uint8Array(1), domid: DOMID_SELF, offset: 0 }, len: 1, flags: GNTCOPY_source_gref }))).toBe('EINVAL');
    expect(t.flagsOf(8)).toBe(GTF_permit_access);
    expect(t.flagsOf(9)).toBe(GTF_permit_access | GTF_readonly);
  });
});

describe('mirror refresh before delivery', () => {
  it('sends only the mirrors whose page was written since they were last sent', async () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const r = t.map(t.mapper, 8);
    const [mine] = t.call(t.mapper, 'memory.increase_reservation', { domid: DOMID_SELF, nr_extents: 1 }).gfns;
    const own = t.call(t.mapper, 'mirror.map_own', { gfns: [mine] }).pages[0];
    const gport = t.call(t.granter, 'evtchn.alloc_unbound', { dom: DOMID_SELF, remote_dom: t.mapper }).port;
    const mport = t.call(t.mapper, 'evtchn.bind_interdomain', { remote_dom: t.granter, remote_port: gport }).local_port;
    await t.flush();
    const refreshes = () => t.eventsFor(t.mapper, 'mirror.refresh').map((e) => e.data.pages.map((p: { mid: number }) => p.mid));
    const before = refreshes().length;
    t.call(t.granter, 'memory.write', { gfn: t.gfn, offset: 0, data: new Uint8Array([1]) });
    t.call(t.granter, 'evtchn.send', { port: gport });
    await t.flush();
    expect(refreshes().slice(before)).toEqual([[r.mid]]); // the granted page, not the untouched own page
    t.call(t.granter, 'evtchn.send', { port: gport });
    await t.flush();
    expect(refreshes().length).toBe(before + 1); // nothing changed: no refresh
    expect(t.eventsFor(t.mapper, 'evtchn.pending').at(-1)!.data).toEqual({ ports: [mport] });
    t.call(t.mapper, 'memory.write', { gfn: mine, offset: 0, data: new Uint8Array([2]) });
    t.call(t.granter, 'evtchn.send', { port: gport });
    await t.flush();
    expect(refreshes().slice(-1)).toEqual([[own.mid]]);
  });
});

describe('grants and domain destruction', () => {
  it("destroying the granter revokes the mapper's mirror; destroying the mapper releases the pins", async () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const r = t.map(t.mapper, 8);
    t.call(0, 'domctl.destroydomain', { domid: t.mapper });
    expect(t.flagsOf(8)).toBe(GTF_permit_access);
    const m2 = t.newDomain('back2');
    t.grant(12, m2, t.gfn, GTF_permit_access);
    const r2 = t.map(m2, 12);
    t.call(0, 'domctl.destroydomain', { domid: t.granter });
    expect(t.eventsFor(m2, 'mirror.revoked')).toEqual([{ peerKey: `local-d${m2}`, ev: 'mirror.revoked', data: { mids: [r2.mid], reason: expect.stringMatching(/destroyed/) } }]);
    expect(t.errnoOf(() => t.call(m2, 'mirror.sync', { mids: [r2.mid] }))).toBe('ENOENT');
    expect(t.call(m2, 'gnttab.unmap_grant_ref', { ops: [{ handle: r2.handle }] })[0].status).toBe(GNTST.bad_handle);
    void r;
  });
});
