/**
 * Watches (tools/xenstored/watch.c): initial event, events at or below the
 * watched path, special @introduceDomain/@releaseDomain, permissions.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XS } from '@xenbox/abi';
import { expectErrno, RawSocket, startXenstored, type TestStack } from './helpers.js';

describe('watches', () => {
  let s: TestStack;
  beforeEach(async () => {
    s = await startXenstored();
  });
  afterEach(async () => {
    await s.close();
  });

  it('a new watch fires once straight away with its own path', async () => {
    const w = await s.dom0.watch('/nothing/here', 'tok');
    expect(await w.next()).toEqual({ path: '/nothing/here', token: 'tok' });
  });

  it('a watch on a parent fires for a child write', async () => {
    const w = await s.dom0.watch('/p');
    await w.next();
    await s.dom0.write('/p/child/grandchild', 'x');
    expect((await w.next()).path).toBe('/p/child/grandchild');
  });

  it('a watch does not fire for siblings that merely share a prefix', async () => {
    const w = await s.dom0.watch('/ab');
    await w.next();
    await s.dom0.write('/abc', 'x');
    await s.dom0.write('/ab/x', 'y');
    expect((await w.next()).path).toBe('/ab/x');
  });

  it('removing a subtree fires for the removed node and for watches on nodes below it', async () => {
    await s.dom0.write('/r/a/b', '1');
    const top = await s.dom0.watch('/r');
    const deep = await s.dom0.watch('/r/a/b');
    await top.next();
    await deep.next();
    await s.dom0.rm('/r/a');
    expect((await top.next()).path).toBe('/r/a');
    expect((await deep.next()).path).toBe('/r/a/b');
  });

  it('UNWATCH stops events; unwatching an unknown watch is ENOENT', async () => {
    const w = await s.dom0.watch('/u', 'u1');
    await w.next();
    await w.unwatch();
    await expectErrno(s.dom0.request(5, Buffer.from('/u\0u1\0')), 'ENOENT');
  });

  it('a relative watch gets relative event paths', async () => {
    await s.dom0.mkdir('/local/domain/3');
    await s.dom0.setPerms('/local/domain/3', [{ perm: 'n', id: 3 }]);
    const d3 = await s.domU(3);
    const w = await d3.watch('device', 'rel');
    expect((await w.next()).path).toBe('device');
    await s.dom0.write('/local/domain/3/device/vif/0', 'x');
    expect((await w.next()).path).toBe('device/vif/0');
  });

  it('@introduceDomain fires on INTRODUCE and @releaseDomain on RELEASE, for dom0', async () => {
    const intro = await s.dom0.watch('@introduceDomain');
    const rel = await s.dom0.watch('@releaseDomain');
    await intro.next();
    await rel.next();
    await s.dom0.introduce(9, { evtchn: 3 });
    expect((await intro.next()).path).toBe('@introduceDomain');
    await s.dom0.release(9);
    expect((await rel.next()).path).toBe('@releaseDomain');
  });

  it('a domU only sees events for nodes it may read', async () => {
    for (const d of [1, 2]) {
      await s.dom0.mkdir(`/local/domain/${d}`);
      await s.dom0.setPerms(`/local/domain/${d}`, [{ perm: 'n', id: d }]);
    }
    const d1 = await s.domU(1);
    const w = await d1.watch('/local/domain');
    await w.next();
    await s.dom0.write('/local/domain/2/private', 'hidden');
    await s.dom0.write('/local/domain/1/mine', 'visible');
    expect((await w.next()).path).toBe('/local/domain/1/mine');
    expect(w.drain()).toEqual([]);
    // @introduceDomain is not readable by a domU: it hears nothing.
    const intro = await d1.watch('@introduceDomain');
    await intro.next();
    await s.dom0.introduce(8, { evtchn: 1 });
    await new Promise((r) => setTimeout(r, 50));
    expect(intro.drain()).toEqual([]);
  });

  it('a watch with a depth fires only that far below its path', async () => {
    const raw = await RawSocket.open(s.socketPath);
    try {
      raw.request(XS.WATCH, '/depth\0d1\x001\0');
      expect((await raw.message())!.payload).toBe('OK\0');
      expect((await raw.message())!.payload).toBe('/depth\0d1\0');
      await s.dom0.write('/depth/a/b', 'too deep');
      await s.dom0.write('/depth/c', 'one level');
      const ev = (await raw.message())!;
      expect(ev.hdr.type).toBe(XS.WATCH_EVENT);
      expect(ev.payload).toBe('/depth/c\0d1\0');
    } finally {
      raw.close();
    }
  });
});
