/**
 * The xenstore ring protocol of a guest connection (ring-connection.ts)
 * against a page in this process: a test "guest" writes requests into req[]
 * and reads rsp[] exactly as docs/misc/xenstore-ring.txt says, including
 * the hostile cases.
 */
import { describe, expect, it } from 'vitest';
import {
  XENSTORE_CONNECTED,
  XENSTORE_ERROR_PROTO,
  XENSTORE_ERROR_RINGIDX,
  XENSTORE_RECONNECT,
  XENSTORE_RING as R,
  XENSTORE_RING_SIZE,
  XS,
  decodeXsHeader,
  encodeXsMessage,
  xsStrings,
} from '@xenbox/abi';
import { silentLogger } from '@xenbox/libxen';
import { RingConnection, type RingPage } from '../dist/ring-connection.js';
import { Xenstored } from '../dist/xenstored.js';

class Page implements RingPage {
  readonly bytes = new Uint8Array(4096);
  private readonly dv = new DataView(this.bytes.buffer);
  u32 = (off: number) => this.dv.getUint32(off, true);
  setU32 = (off: number, v: number) => this.dv.setUint32(off, v >>> 0, true);
  read = (off: number, len: number) => this.bytes.slice(off, off + len);
  write = (off: number, data: Uint8Array) => this.bytes.set(data, off);
}

/** The guest's side of one ring (xb_write / xb_read), with free-running indexes starting where we like. */
class Guest {
  readonly page = new Page();
  notifications = 0;
  readonly rc: RingConnection;
  private rspBuf = Buffer.alloc(0);

  constructor(
    readonly xs: Xenstored,
    readonly domid: number,
    start = 0,
  ) {
    for (const off of [R.REQ_CONS, R.REQ_PROD, R.RSP_CONS, R.RSP_PROD]) this.page.setU32(off, start);
    const io = { page: this.page, barrier: async () => {}, notify: () => void this.notifications++, teardown: async () => {} };
    this.rc = new RingConnection(xs, domid, 0x80fff, 2, io, silentLogger());
    xs.domains.update(domid, { introduced: true });
    this.rc.start(15);
  }

  /** Put bytes into req[] (as many as fit); returns how many. */
  put(bytes: Uint8Array): number {
    const cons = this.page.u32(R.REQ_CONS);
    let prod = this.page.u32(R.REQ_PROD);
    let n = 0;
    while (n < bytes.length && ((prod - cons) >>> 0) < XENSTORE_RING_SIZE) {
      this.page.bytes[R.REQ + (prod & (XENSTORE_RING_SIZE - 1))] = bytes[n++]!;
      prod = (prod + 1) >>> 0;
    }
    this.page.setU32(R.REQ_PROD, prod);
    return n;
  }

  /** Signal xenstored and let it run. */
  async kick(): Promise<void> {
    this.rc.pump();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }

  /** Take everything in rsp[] and return the whole messages received so far. */
  take(): Array<{ type: number; reqId: number; payload: string }> {
    const cons = this.page.u32(R.RSP_CONS);
    const prod = this.page.u32(R.RSP_PROD);
    expect((prod - cons) >>> 0).toBeLessThanOrEqual(XENSTORE_RING_SIZE);
    const bytes: number[] = [];
    for (let i = cons; i !== prod; i = (i + 1) >>> 0) bytes.push(this.page.bytes[R.RSP + (i & (XENSTORE_RING_SIZE - 1))]!);
    this.page.setU32(R.RSP_CONS, prod);
    this.rspBuf = Buffer.concat([this.rspBuf, Buffer.from(bytes)]);
    const out = [];
    while (this.rspBuf.length >= 16) {
      const h = decodeXsHeader(this.rspBuf);
      if (this.rspBuf.length < 16 + h.len) break;
      out.push({ type: h.type, reqId: h.reqId, payload: this.rspBuf.toString('latin1', 16, 16 + h.len) });
      this.rspBuf = this.rspBuf.subarray(16 + h.len);
    }
    return out;
  }
}

const request = (type: number, reqId: number, ...args: string[]) => encodeXsMessage(type, reqId, 0, xsStrings(...args));

/** /local/domain/<domid> owned by the domain, with `n` children of long names (a big DIRECTORY reply). */
function domainHome(xs: Xenstored, domid: number, n = 0): string {
  const dom0 = [{ id: 0, bits: 0 }];
  for (const p of ['/local', '/local/domain']) if (!xs.store.has(p)) xs.store.create(p, '', dom0);
  const base = `/local/domain/${domid}`;
  xs.store.create(base, '', [{ id: domid, bits: 0 }]);
  for (let i = 0; i < n; i++) xs.store.create(`${base}/a-child-with-a-long-name-${String(i).padStart(3, '0')}`, '', [{ id: domid, bits: 0 }]);
  return base;
}

describe('a guest xenstore ring', () => {
  it('serves a request whose header and payload arrive in pieces across events and wrap around the ring and the u32 indexes', async () => {
    const xs = new Xenstored(silentLogger());
    // 10 bytes before both the ring's end and 2^32: the header straddles both.
    const g = new Guest(xs, 5, 0xffff_ffff - 9);
    const msg = request(XS.GET_DOMAIN_PATH, 7, '5');
    g.put(msg.subarray(0, 5));
    await g.kick();
    expect(g.take()).toEqual([]);
    g.put(msg.subarray(5, 17));
    await g.kick();
    expect(g.take()).toEqual([]);
    g.put(msg.subarray(17));
    await g.kick();
    expect(g.take()).toEqual([{ type: XS.GET_DOMAIN_PATH, reqId: 7, payload: '/local/domain/5\0' }]);
    expect(g.notifications).toBeGreaterThan(0);
  });

  it('never writes more than the guest has room for, and sends the rest as the guest consumes', async () => {
    const xs = new Xenstored(silentLogger());
    const g = new Guest(xs, 6);
    // 15 replies of 16 + 16 bytes: 480 bytes; then a big one that needs two rounds.
    const reqs = Buffer.concat(Array.from({ length: 15 }, (_, i) => request(XS.GET_DOMAIN_PATH, i + 1, '6')));
    expect(g.put(reqs)).toBe(reqs.length);
    await g.kick();
    expect(g.take()).toHaveLength(15);
    // A reply bigger than the ring: DIRECTORY of a node with many children.
    const base = domainHome(xs, 6, 60);
    g.put(request(XS.DIRECTORY, 99, base));
    await g.kick();
    const first = g.page.u32(R.RSP_PROD) - g.page.u32(R.RSP_CONS);
    expect(first).toBe(XENSTORE_RING_SIZE); // full, not overrun
    expect(g.take()).toEqual([]); // not a whole message yet
    await g.kick(); // the guest's "I consumed" event
    const [dir] = g.take();
    expect(dir?.reqId).toBe(99);
    expect(dir?.payload.split('\0').filter(Boolean)).toHaveLength(60);
  });

  it('stops reading requests while `outstanding` replies wait for ring space', async () => {
    const xs = new Xenstored(silentLogger());
    xs.quotas.setGlobal('outstanding', 3);
    const g = new Guest(xs, 7);
    const base = domainHome(xs, 7, 60);
    // Each DIRECTORY reply is ~1.7 KiB: the ring holds less than one.  Five requests.
    g.put(Buffer.concat(Array.from({ length: 5 }, (_, i) => request(XS.DIRECTORY, i + 1, base))));
    await g.kick();
    // Three read and answered into the queue; the other two left in req[].
    expect(g.rc.served).toBe(3);
    expect(g.page.u32(R.REQ_PROD) - g.page.u32(R.REQ_CONS)).toBe(2 * (16 + base.length + 1));
    let got = 0;
    for (let round = 0; round < 20 && got < 5; round++) {
      got += g.take().length;
      await g.kick();
    }
    expect(got).toBe(5);
    expect(g.rc.served).toBe(5);
  });

  it('sets error = XENSTORE_ERROR_RINGIDX for indexes a ring apart and ignores the guest from then on; another ring is unaffected', async () => {
    const xs = new Xenstored(silentLogger());
    const bad = new Guest(xs, 8);
    const good = new Guest(xs, 9);
    bad.page.setU32(R.REQ_PROD, 2000);
    await bad.kick();
    expect(bad.page.u32(R.ERROR)).toBe(XENSTORE_ERROR_RINGIDX);
    expect(bad.rc.ignored).toMatch(/more than a ring/);
    // Even a sane request now goes unanswered.
    bad.page.setU32(R.REQ_PROD, 0);
    bad.put(request(XS.GET_DOMAIN_PATH, 1, '8'));
    await bad.kick();
    expect(bad.take()).toEqual([]);
    good.put(request(XS.GET_DOMAIN_PATH, 1, '9'));
    await good.kick();
    expect(good.take()).toEqual([{ type: XS.GET_DOMAIN_PATH, reqId: 1, payload: '/local/domain/9\0' }]);
  });

  it('sets error = XENSTORE_ERROR_RINGIDX when rsp_cons runs past rsp_prod', async () => {
    const xs = new Xenstored(silentLogger());
    const g = new Guest(xs, 10);
    g.page.setU32(R.RSP_CONS, 5000);
    g.put(request(XS.GET_DOMAIN_PATH, 1, '10'));
    await g.kick();
    expect(g.page.u32(R.ERROR)).toBe(XENSTORE_ERROR_RINGIDX);
  });

  it('sets error = XENSTORE_ERROR_PROTO for a header announcing more than 4096 bytes', async () => {
    const xs = new Xenstored(silentLogger());
    const g = new Guest(xs, 11);
    const h = Buffer.alloc(16);
    h.writeUInt32LE(XS.WRITE, 0);
    h.writeUInt32LE(4097, 12);
    g.put(h);
    await g.kick();
    expect(g.page.u32(R.ERROR)).toBe(XENSTORE_ERROR_PROTO);
    expect(g.rc.ignored).toMatch(/4097/);
  });

  it('answers garbage that parses as a message with an error reply, and goes on', async () => {
    const xs = new Xenstored(silentLogger());
    const g = new Guest(xs, 12);
    const junk = Buffer.alloc(16, 0xee);
    junk.writeUInt32LE(0, 12); // len 0, type 0xeeeeeeee
    g.put(Buffer.concat([junk, request(XS.GET_DOMAIN_PATH, 3, '12')]));
    await g.kick();
    const replies = g.take();
    expect(replies[0]).toMatchObject({ type: XS.ERROR, payload: 'ENOSYS\0' });
    expect(replies[1]).toMatchObject({ type: XS.GET_DOMAIN_PATH, reqId: 3 });
    expect(g.page.u32(R.ERROR)).toBe(0);
  });

  it('on XENSTORE_RECONNECT drops watches and partial messages, zeroes the indexes and answers XENSTORE_CONNECTED', async () => {
    const xs = new Xenstored(silentLogger());
    const g = new Guest(xs, 13, 500);
    g.put(request(XS.WATCH, 1, '/local/domain/13', 'tok'));
    await g.kick();
    expect(g.rc.conn.watches).toHaveLength(1);
    g.take();
    g.put(request(XS.GET_DOMAIN_PATH, 2, '13').subarray(0, 9)); // a partial message
    await g.kick();
    g.page.setU32(R.CONNECTION, XENSTORE_RECONNECT);
    await g.kick();
    expect(g.page.u32(R.CONNECTION)).toBe(XENSTORE_CONNECTED);
    expect([R.REQ_CONS, R.REQ_PROD, R.RSP_CONS, R.RSP_PROD].map((o) => g.page.u32(o))).toEqual([0, 0, 0, 0]);
    expect(g.rc.conn.watches).toHaveLength(0);
    g.put(request(XS.GET_DOMAIN_PATH, 3, '13'));
    await g.kick();
    expect(g.take()).toEqual([{ type: XS.GET_DOMAIN_PATH, reqId: 3, payload: '/local/domain/13\0' }]);
  });

  it('serves requests as the guest\'s domain: no /local/domain/0 for it', async () => {
    const xs = new Xenstored(silentLogger());
    domainHome(xs, 0);
    xs.store.create('/local/domain/0/name', 'Domain-0', [{ id: 0, bits: 0 }]);
    const g = new Guest(xs, 14);
    g.put(request(XS.READ, 1, '/local/domain/0/name'));
    await g.kick();
    expect(g.take()).toEqual([{ type: XS.ERROR, reqId: 1, payload: 'EACCES\0' }]);
  });
});
