/**
 * Quotas as C xenstored applies them to unprivileged domains
 * (tools/xenstored/domain.c hard_quotas[]), hit and reported.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XenstoreClient } from '@xenbox/libxen';
import { expectErrno, startXenstored, type TestStack } from './helpers.js';

describe('quotas', () => {
  let s: TestStack;
  let d1: XenstoreClient;
  beforeEach(async () => {
    s = await startXenstored();
    await s.dom0.mkdir('/local/domain/1');
    await s.dom0.setPerms('/local/domain/1', [{ perm: 'n', id: 1 }]);
    d1 = await s.domU(1);
  });
  afterEach(async () => {
    await s.close();
  });

  it('GET_QUOTA lists the quotas with C xenstored\'s defaults', async () => {
    const names = (await s.dom0.request(25, Buffer.alloc(0))).toString('latin1');
    expect(names).toBe('nodes watches outstanding memory transactions transaction-nodes node-permissions path-max node-size\0');
    const get = async (...a: string[]) => (await s.dom0.request(25, Buffer.from(a.map((x) => `${x}\0`).join('')))).toString('latin1');
    expect(await get('nodes')).toBe('1000\0');
    expect(await get('watches')).toBe('128\0');
    expect(await get('transactions')).toBe('10\0');
    expect(await get('node-size')).toBe('2048\0');
    expect(await get('1', 'node-permissions')).toBe('5\0');
  });

  it('a domain over its nodes quota gets ENOSPC and nothing is created', async () => {
    await s.dom0.request(26, Buffer.from('1\0nodes\x005\0'));
    // It owns its home already: 1 + 3 = 4 nodes.
    for (let i = 0; i < 3; i++) await d1.write(`n${i}`, 'x');
    await expectErrno(d1.write('a/b/c', 'x'), 'ENOSPC');
    expect(await s.dom0.tryRead('/local/domain/1/a')).toBeUndefined();
    await d1.write('n3', 'x');
    await expectErrno(d1.write('n4', 'x'), 'ENOSPC');
    // dom0 is not bound by quotas.
    for (let i = 0; i < 10; i++) await s.dom0.write(`/local/domain/0/n${i}`, 'x');
  });

  it('a node over node-size is ENOSPC', async () => {
    await expectErrno(d1.write('big', 'x'.repeat(2100)), 'ENOSPC');
    await d1.write('fits', 'x'.repeat(1900));
    await s.dom0.write('/local/domain/0/big', 'x'.repeat(4000));
  });

  it('too many permissions on a node is ENOSPC', async () => {
    await d1.write('p', '');
    await expectErrno(d1.setPerms('/local/domain/1/p', [1, 2, 3, 4, 5, 6].map((id) => ({ perm: 'r' as const, id }))), 'ENOSPC');
  });

  it('too many watches is E2BIG, a duplicate watch is EEXIST', async () => {
    await s.dom0.request(26, Buffer.from('1\0watches\x002\0'));
    await d1.watch('a', 't1');
    await expectErrno(d1.request(4, Buffer.from('a\0t1\0')), 'EEXIST');
    await d1.watch('b', 't2');
    await expectErrno(d1.watch('c', 't3'), 'E2BIG');
  });

  it('too many transactions is ENOSPC', async () => {
    for (let i = 0; i < 10; i++) await d1.transactionStart();
    await expectErrno(d1.transactionStart(), 'ENOSPC');
  });

  it('a path longer than path-max is EINVAL', async () => {
    await expectErrno(d1.write('x'.repeat(2049), 'v'), 'EINVAL');
  });

  it('xenstore-control quota set changes the global quota; quota <domid> reports use', async () => {
    expect(await s.dom0.control('quota', 'set', 'nodes', '3')).toBe('OK');
    await d1.write('a', '1');
    await d1.write('b', '1');
    await expectErrno(d1.write('c', '1'), 'ENOSPC');
    const report = await s.dom0.control('quota', '1');
    expect(report).toMatch(/^Domain 1:\nnodes {12}: +3 \(max +\d+\)\n/);
  });
});
