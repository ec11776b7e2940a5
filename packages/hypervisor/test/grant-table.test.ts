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
  GNTCOPY_xenbox_dest_buf,
  GNTCOPY_xenbox_source_buf,
  GNTTAB_COPY_STRUCT,
  GnttabCopyStatuses,
  GnttabCopyWriter,
  decodeGnttabCopyReply,
  encodeGnttabCopy,
  encodeGrantEntry,
  type GnttabCopy,
  type GnttabCopyResult,
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
  /** gnttab.copy of ops written as objects, through the wire form (struct gnttab_copy array). */
  const copyOps = (domid: number, ops: GnttabCopy[]): GnttabCopyResult[] => {
    const { args, destAt } = encodeGnttabCopy(ops);
    return decodeGnttabCopyReply(t.call(domid, 'gnttab.copy', args), ops, destAt);
  };
  return { ...t, granter, mapper, other, gfn: gfn as number, grant, flagsOf, map, copyOps };
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
    const rs = t.copyOps(t.mapper, [
      { source: { ref: 8, domid: t.granter, offset: 0 }, dest: { gmfn: mine, domid: DOMID_SELF, offset: 100 }, len: 11, flags: GNTCOPY_source_gref },
      { source: { gmfn: mine, domid: DOMID_SELF, offset: 100 }, dest: { ref: 8, domid: t.granter, offset: 2000 }, len: 5, flags: GNTCOPY_dest_gref },
    ]);
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
    const copy = (op: GnttabCopy) => t.copyOps(t.mapper, [op])[0]!.status;
    expect(copy({ source: ref(8, 4000), dest: own(), len: 200, flags: GNTCOPY_source_gref })).toBe(GNTST.bad_copy_arg);
    expect(copy({ source: ref(8), dest: own(4095), len: 2, flags: GNTCOPY_source_gref })).toBe(GNTST.bad_copy_arg);
    expect(copy({ source: { gmfn: t.gfn, domid: t.granter, offset: 0 }, dest: own(), len: 1, flags: 0 })).toBe(GNTST.permission_denied);
    expect(copy({ source: ref(8, 0, 4000), dest: own(), len: 1, flags: GNTCOPY_source_gref })).toBe(GNTST.bad_domain);
    expect(copy({ source: ref(600), dest: own(), len: 1, flags: GNTCOPY_source_gref })).toBe(GNTST.bad_gntref);
    expect(copy({ source: own(), dest: ref(9), len: 1, flags: GNTCOPY_dest_gref })).toBe(GNTST.general_error); // write to r/o grant
    expect(copy({ source: { gmfn: 0x999, domid: DOMID_SELF, offset: 0 }, dest: own(), len: 1, flags: 0 })).toBe(GNTST.bad_page);
    expect(t.copyOps(t.other, [{ source: ref(8), dest: { gmfn: 0, domid: DOMID_SELF, offset: 0 }, len: 1, flags: GNTCOPY_source_gref }])[0]!.status).toBe(GNTST.general_error);
  });
});

describe('copy with the bytes in the message (xenbox message buffers)', () => {
  it('returns a grant\'s bytes in the result (inline dest) and writes given bytes into a grant (source bytes)', () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const rs = t.copyOps(t.mapper, [
      { source: { ref: 8, domid: t.granter, offset: 0 }, dest: { inline: true, domid: DOMID_SELF, offset: 0 }, len: 5, flags: GNTCOPY_source_gref },
      { source: { bytes: new TextEncoder().encode('xenbox'), domid: DOMID_SELF, offset: 0 }, dest: { ref: 8, domid: t.granter, offset: 3000 }, len: 6, flags: GNTCOPY_dest_gref },
      { source: { ref: 8, domid: t.granter, offset: 3000 }, dest: { inline: true, domid: DOMID_SELF, offset: 10 }, len: 6, flags: GNTCOPY_source_gref },
    ]);
    expect(rs.map((r) => r.status)).toEqual([GNTST.okay, GNTST.okay, GNTST.okay]);
    expect(new TextDecoder().decode(rs[0]!.data)).toBe('hello');
    expect(new TextDecoder().decode(rs[2]!.data)).toBe('xenbox');
    expect(rs[1]!.data).toBeUndefined();
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
    const copy = (op: GnttabCopy) => t.copyOps(t.mapper, [op])[0]!;
    expect(copy({ source: ref(8, 4000), dest: inline(), len: 200, flags: GNTCOPY_source_gref })).toEqual({ status: GNTST.bad_copy_arg });
    expect(copy({ source: ref(8), dest: inline(4095), len: 2, flags: GNTCOPY_source_gref })).toEqual({ status: GNTST.bad_copy_arg });
    expect(copy({ source: bytes(2), dest: ref(8, 4095), len: 2, flags: GNTCOPY_dest_gref }).status).toBe(GNTST.bad_copy_arg);
    expect(copy({ source: bytes(1), dest: ref(9), len: 1, flags: GNTCOPY_dest_gref }).status).toBe(GNTST.general_error); // r/o grant
    expect(copy({ source: ref(10), dest: inline(), len: 1, flags: GNTCOPY_source_gref }).status).toBe(GNTST.general_error); // another domid's grant
    expect(copy({ source: ref(600), dest: inline(), len: 1, flags: GNTCOPY_source_gref }).status).toBe(GNTST.bad_gntref);
    expect(copy({ source: ref(8, 0, 4000), dest: inline(), len: 1, flags: GNTCOPY_source_gref }).status).toBe(GNTST.bad_domain);
    expect(copy({ source: ref(8), dest: inline(0, t.granter), len: 1, flags: GNTCOPY_source_gref }).status).toBe(GNTST.permission_denied); // a buffer is only one's own
    expect(copy({ source: bytes(1, t.granter), dest: ref(8), len: 1, flags: GNTCOPY_dest_gref }).status).toBe(GNTST.permission_denied);
    expect(copy({ source: ref(8), dest: { ...inline(), ref: 8, domid: t.granter }, len: 1, flags: GNTCOPY_source_gref | GNTCOPY_dest_gref }).status).toBe(GNTST.general_error); // a grant side is not a buffer
    expect(t.errnoOf(() => copy({ source: bytes(3), dest: ref(8), len: 2, flags: GNTCOPY_dest_gref }))).toBe('EINVAL'); // the encoder refuses bytes that are not len long
    expect(t.flagsOf(8)).toBe(GTF_permit_access);
    expect(t.flagsOf(9)).toBe(GTF_permit_access | GTF_readonly);
  });
});

describe('gnttab.copy on the wire: an array of struct gnttab_copy', () => {
  it("lays each op out as Xen's struct gnttab_copy on a 64-bit guest (40 bytes, little-endian)", () => {
    const w = new GnttabCopyWriter(2);
    w.set(1, 0x1_2345_6789, 0x7ff0, 0x0abc, 42, 3, 4095, 0x0f00, 0x0301);
    const b = w.ops;
    const dv = new DataView(b.buffer);
    const at = GNTTAB_COPY_STRUCT.size;
    expect(GNTTAB_COPY_STRUCT.size).toBe(40);
    expect(b.length).toBe(80);
    expect(dv.getBigUint64(at + 0, true)).toBe(0x1_2345_6789n); // source.u
    expect(dv.getUint16(at + 8, true)).toBe(0x7ff0); // source.domid
    expect(dv.getUint16(at + 10, true)).toBe(0x0abc); // source.offset
    expect(dv.getBigUint64(at + 16, true)).toBe(42n); // dest.u
    expect(dv.getUint16(at + 24, true)).toBe(3); // dest.domid
    expect(dv.getUint16(at + 26, true)).toBe(4095); // dest.offset
    expect(dv.getUint16(at + 32, true)).toBe(0x0f00); // len
    expect(dv.getUint16(at + 34, true)).toBe(0x0301); // flags
    expect(dv.getInt16(at + 36, true)).toBe(0); // status, answered in the reply
  });

  it('refuses a malformed call with EINVAL or E2BIG naming the problem, and changes nothing', () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const one = new GnttabCopyWriter(1);
    one.set(0, 8, t.granter, 0, 0, DOMID_SELF, 0, 1, GNTCOPY_source_gref | GNTCOPY_xenbox_dest_buf);
    const fail = (args: unknown) => {
      try {
        t.call(t.mapper, 'gnttab.copy', args);
        return 'no error';
      } catch (e) {
        return (e as Error).message; // "ERRNO: what is wrong"
      }
    };
    expect(fail({ ops: [{ source: { ref: 8, domid: t.granter, offset: 0 } }] })).toMatch(/^EINVAL: gnttab.copy: ops must be a byte string/);
    expect(fail({ ops: 'x' })).toMatch(/^EINVAL/);
    expect(fail({ ops: new Uint8Array(41) })).toMatch(/^EINVAL: gnttab.copy: ops is 41 bytes, not a whole number of 40-byte struct gnttab_copy/);
    expect(fail({ ops: new Uint8Array(1025 * 40) })).toMatch(/^E2BIG: gnttab.copy: ops has 1025 entries, more than 1024/);
    expect(fail({ ops: one.ops, data: 'abc' })).toMatch(/^EINVAL: gnttab.copy: data must be a byte string/);
    expect(fail({ ops: one.ops, data: new Uint8Array(4 * 1024 * 1024 + 1) })).toMatch(/^E2BIG/);
    expect(t.flagsOf(8)).toBe(GTF_permit_access);
    expect(new GnttabCopyStatuses(t.call(t.mapper, 'gnttab.copy', { ops: one.ops }).status, 1).get(0)).toBe(GNTST.okay);
  });

  it('answers each op with its status: buffers out of range are bad_copy_arg, and failed ops leave zeros in the reply', () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const w = new GnttabCopyWriter(6);
    const fromGrant = GNTCOPY_source_gref | GNTCOPY_xenbox_dest_buf;
    w.set(0, 8, t.granter, 0, 0, DOMID_SELF, 0, 5, fromGrant); // "hello" at 0
    w.set(1, 600, t.granter, 0, 5, DOMID_SELF, 0, 5, fromGrant); // bad ref: bytes 5..10 stay zero
    w.set(2, 8, t.granter, 5, 10, DOMID_SELF, 0, 6, fromGrant); // " grant" at 10
    w.set(3, 40, DOMID_SELF, 0, 8, t.granter, 0, 20, GNTCOPY_xenbox_source_buf | GNTCOPY_dest_gref); // source [40, +20) is past the call's 50 bytes
    w.set(4, 8, t.granter, 0, 4 * 1024 * 1024 - 2, DOMID_SELF, 0, 5, fromGrant); // dest past GNTTAB_COPY_BUF_MAX
    w.set(5, 2 ** 60, DOMID_SELF, 0, 16, DOMID_SELF, 0, 1, GNTCOPY_xenbox_dest_buf); // an own gmfn nobody has
    const r = t.call(t.mapper, 'gnttab.copy', { ops: w.ops, data: new Uint8Array(50) });
    const st = new GnttabCopyStatuses(r.status, 6);
    expect([0, 1, 2, 3, 4, 5].map((i) => st.get(i))).toEqual([GNTST.okay, GNTST.bad_gntref, GNTST.okay, GNTST.bad_copy_arg, GNTST.bad_copy_arg, GNTST.bad_page]);
    expect(r.data.length).toBe(17);
    expect(new TextDecoder().decode(r.data.subarray(0, 5))).toBe('hello');
    expect([...r.data.subarray(5, 10)]).toEqual([0, 0, 0, 0, 0]);
    expect(new TextDecoder().decode(r.data.subarray(10, 16))).toBe(' grant');
    expect(r.data[16]).toBe(0);
  });

  it("reads a grant side's ref from the union's first 32 bits only, as Xen does", () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const w = new GnttabCopyWriter(1);
    w.set(0, 8, t.granter, 0, 0, DOMID_SELF, 0, 5, GNTCOPY_source_gref | GNTCOPY_xenbox_dest_buf);
    new DataView(w.ops.buffer).setUint32(4, 0xdead_beef, true); // what a guest left in the union's upper half
    const r = t.call(t.mapper, 'gnttab.copy', { ops: w.ops });
    expect(new GnttabCopyStatuses(r.status, 1).get(0)).toBe(GNTST.okay);
    expect(new TextDecoder().decode(r.data)).toBe('hello');
  });

  it('zeroes the reply where no op wrote, whatever order the dests are laid out in', () => {
    const t = setup();
    t.grant(8, t.mapper, t.gfn, GTF_permit_access);
    const w = new GnttabCopyWriter(2);
    w.set(0, 8, t.granter, 0, 300, DOMID_SELF, 0, 5, GNTCOPY_source_gref | GNTCOPY_xenbox_dest_buf);
    w.set(1, 601, t.granter, 0, 0, DOMID_SELF, 0, 5, GNTCOPY_source_gref | GNTCOPY_xenbox_dest_buf);
    const r = t.call(t.mapper, 'gnttab.copy', { ops: w.ops });
    expect(r.data.length).toBe(305);
    expect(r.data.subarray(0, 300).every((b: number) => b === 0)).toBe(true);
    expect(new TextDecoder().decode(r.data.subarray(300))).toBe('hello');
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
