/**
 * Permissions between domains, as C xenstored enforces them
 * (core.c perm_for_conn(), errno_from_parents()).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XenstoreClient } from '@xenbox/libxen';
import { expectErrno, startXenstored, type TestStack } from './helpers.js';

describe('permissions', () => {
  let s: TestStack;
  let d1: XenstoreClient;
  let d2: XenstoreClient;
  beforeEach(async () => {
    s = await startXenstored();
    // What a toolstack does for each guest: its home, owned by it.
    for (const d of [1, 2]) {
      await s.dom0.mkdir(`/local/domain/${d}`);
      await s.dom0.setPerms(`/local/domain/${d}`, [{ perm: 'n', id: d }]);
    }
    d1 = await s.domU(1);
    d2 = await s.domU(2);
  });
  afterEach(async () => {
    await s.close();
  });

  it('a domU cannot read /local/domain/0', async () => {
    await s.dom0.write('/local/domain/0/name', 'Domain-0');
    await expectErrno(d1.read('/local/domain/0/name'), 'EACCES');
  });

  it('a domU writes relative to its home and owns what it creates', async () => {
    await d1.write('data/x', 'v');
    expect(await s.dom0.read('/local/domain/1/data/x')).toBe('v');
    expect(await s.dom0.getPerms('/local/domain/1/data/x')).toEqual([{ perm: 'n', id: 1 }]);
  });

  it('two domUs get EACCES both ways, until the owner grants access', async () => {
    await d1.write('/local/domain/1/secret', 'one');
    await d2.write('/local/domain/2/secret', 'two');
    await expectErrno(d2.read('/local/domain/1/secret'), 'EACCES');
    await expectErrno(d1.read('/local/domain/2/secret'), 'EACCES');
    await expectErrno(d2.write('/local/domain/1/secret', 'x'), 'EACCES');
    await expectErrno(d1.write('/local/domain/2/secret', 'x'), 'EACCES');
    await d1.setPerms('/local/domain/1/secret', [{ perm: 'n', id: 1 }, { perm: 'r', id: 2 }]);
    expect(await d2.read('/local/domain/1/secret')).toBe('one');
    await expectErrno(d2.write('/local/domain/1/secret', 'x'), 'EACCES');
    await d1.setPerms('/local/domain/1/secret', [{ perm: 'n', id: 1 }, { perm: 'b', id: 2 }]);
    await d2.write('/local/domain/1/secret', 'written by 2');
    expect(await d1.read('/local/domain/1/secret')).toBe('written by 2');
  });

  it('a missing node under an unreadable parent is EACCES, not ENOENT (no information leak)', async () => {
    await expectErrno(d1.read('/local/domain/2/nothing'), 'EACCES');
    await expectErrno(d1.read('/local/domain/1/nothing'), 'ENOENT');
  });

  it('the default letter of the owner entry applies to unlisted domains', async () => {
    await s.dom0.write('/shared/x', 'for all');
    await s.dom0.setPerms('/shared/x', [{ perm: 'r', id: 0 }]);
    expect(await d1.read('/shared/x')).toBe('for all');
    await expectErrno(d1.write('/shared/x', 'no'), 'EACCES');
  });

  it('only the owner may change permissions, and only dom0 may change the owner', async () => {
    await d1.write('mine', 'v');
    await d1.setPerms('/local/domain/1/mine', [{ perm: 'n', id: 1 }, { perm: 'b', id: 2 }]);
    await expectErrno(d2.setPerms('/local/domain/1/mine', [{ perm: 'n', id: 1 }]), 'EACCES');
    await expectErrno(d1.setPerms('/local/domain/1/mine', [{ perm: 'n', id: 2 }]), 'EPERM');
    await s.dom0.setPerms('/local/domain/1/mine', [{ perm: 'n', id: 2 }]);
    expect(await d2.getPerms('/local/domain/1/mine')).toEqual([{ perm: 'n', id: 2 }]);
  });

  it('privileged messages are refused to a domU with EACCES', async () => {
    await expectErrno(d1.introduce(7, { evtchn: 1 }), 'EACCES');
    await expectErrno(d1.control('help'), 'EACCES');
    await expectErrno(d1.setTarget(1, 2), 'EACCES');
    await expectErrno(d1.isDomainIntroduced(2), 'EACCES');
  });

  it('malformed permission strings are EINVAL', async () => {
    await s.dom0.write('/p', '');
    await expectErrno(s.dom0.setPerms('/p', [{ perm: 'x' as 'n', id: 0 }]), 'EINVAL');
    await expectErrno(s.dom0.request(14, Buffer.from('/p\0r\0')), 'EINVAL');
    await expectErrno(s.dom0.request(14, Buffer.from('/p\0')), 'EINVAL');
  });

  it('SET_TARGET gives a stub domain its target\'s rights, and only those', async () => {
    await d2.write('/local/domain/2/device-model', 'ready');
    await expectErrno(d1.read('/local/domain/2/device-model'), 'EACCES');
    await s.dom0.setTarget(1, 2);
    expect(await d1.read('/local/domain/2/device-model')).toBe('ready');
    await d1.write('/local/domain/2/device-model', 'changed by the stub domain');
    expect(await d2.read('/local/domain/2/device-model')).toBe('changed by the stub domain');
    // It inherits the target's grants too, but nothing of dom0's.
    await s.dom0.write('/granted', 'g');
    await s.dom0.setPerms('/granted', [{ perm: 'n', id: 0 }, { perm: 'r', id: 2 }]);
    expect(await d1.read('/granted')).toBe('g');
    await s.dom0.write('/local/domain/0/private', 'p');
    await expectErrno(d1.read('/local/domain/0/private'), 'EACCES');
  });

  it('SET_TARGET of a domain never introduced is ENOENT', async () => {
    await expectErrno(s.dom0.setTarget(1, 99), 'ENOENT');
  });

  it('a ZeroMQ peer with a wrong secret is refused', async () => {
    await s.dom0.introduce(5, { secret: 'right-secret-0123456789' });
    await expect(XenstoreClient.connectZmq({ runDir: s.runDir }, { domid: 5, secret: 'wrong-secret-0123456789' }, { timeoutMs: 500 })).rejects.toThrow();
  });

  it('RELEASE removes the domain\'s nodes, drops its connection and fires @releaseDomain', async () => {
    const w = await s.dom0.watch('@releaseDomain');
    expect((await w.next()).path).toBe('@releaseDomain');
    await d1.write('stuff', 'x');
    await s.dom0.release(1);
    expect((await w.next()).path).toBe('@releaseDomain');
    expect(await s.dom0.tryRead('/local/domain/1/stuff')).toBeUndefined();
    expect(await s.dom0.isDomainIntroduced(1)).toBe(false);
    await expectErrno(d1.read('/local/domain/1'), 'ETIMEDOUT').catch(() => {});
  });
});
