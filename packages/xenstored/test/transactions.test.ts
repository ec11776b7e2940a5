/**
 * Transactions: private views, conflict detection by generation count,
 * EAGAIN with nothing applied (tools/xenstored/transaction.c).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XS } from '@xenbox/abi';
import { expectErrno, startXenstored, type TestStack } from './helpers.js';

describe('transactions', () => {
  let s: TestStack;
  beforeEach(async () => {
    s = await startXenstored();
  });
  afterEach(async () => {
    await s.close();
  });

  it('writes in a transaction are invisible outside until it commits', async () => {
    const xs = s.dom0;
    await xs.write('/t/a', 'old');
    const t = await xs.transactionStart();
    await xs.write('/t/a', 'new', t);
    await xs.write('/t/b/c', 'created', t);
    expect(await xs.read('/t/a')).toBe('old');
    expect(await xs.tryRead('/t/b/c')).toBeUndefined();
    expect(await xs.read('/t/a', t)).toBe('new');
    await xs.transactionEnd(t, true);
    expect(await xs.read('/t/a')).toBe('new');
    expect(await xs.read('/t/b/c')).toBe('created');
    expect(await xs.directory('/t')).toEqual(['a', 'b']);
  });

  it('a conflicting TRANSACTION_END returns EAGAIN and applies nothing', async () => {
    const xs = s.dom0;
    await xs.write('/c/x', '1');
    const t = await xs.transactionStart();
    expect(await xs.read('/c/x', t)).toBe('1');
    await xs.write('/c/y', 'mine', t);
    await xs.rm('/c/x', t);
    await xs.write('/c/x', '2'); // someone else, outside
    await expectErrno(xs.transactionEnd(t, true), 'EAGAIN');
    expect(await xs.read('/c/x')).toBe('2');
    expect(await xs.tryRead('/c/y')).toBeUndefined();
  });

  it('a transaction sees its snapshot of a node even after an outside write (test-xenstore "ta err")', async () => {
    const xs = s.dom0;
    await xs.write('/s', 'a');
    const t = await xs.transactionStart();
    expect(await xs.read('/s', t)).toBe('a');
    await xs.write('/s', 'b');
    expect(await xs.read('/s', t)).toBe('a');
    await expectErrno(xs.transactionEnd(t, true), 'EAGAIN');
  });

  it('an aborted transaction changes nothing', async () => {
    const t = await s.dom0.transactionStart();
    await s.dom0.write('/abort/me', 'x', t);
    await s.dom0.transactionEnd(t, false);
    expect(await s.dom0.tryRead('/abort/me')).toBeUndefined();
  });

  it('TRANSACTION_START inside a transaction is EBUSY; an unknown transaction is ENOENT', async () => {
    const t = await s.dom0.transactionStart();
    await expectErrno(s.dom0.request(XS.TRANSACTION_START, Buffer.from('\0'), t), 'EBUSY');
    await expectErrno(s.dom0.read('/', 4242), 'ENOENT');
    await expectErrno(s.dom0.request(XS.TRANSACTION_END, Buffer.from('X\0'), t), 'EINVAL');
  });

  it('watches fire for transaction writes only when it commits', async () => {
    const w = await s.dom0.watch('/wt');
    await w.next();
    const t = await s.dom0.transactionStart();
    await s.dom0.write('/wt/a', '1', t);
    await new Promise((r) => setTimeout(r, 50));
    expect(w.drain()).toEqual([]);
    await s.dom0.transactionEnd(t, true);
    expect((await w.next()).path).toBe('/wt/a');
  });

  it('the transaction helper retries on conflict until it commits', async () => {
    const xs = s.dom0;
    await xs.write('/counter', '0');
    let runs = 0;
    await xs.transaction(async (t) => {
      runs++;
      const v = Number(await t.read('/counter'));
      if (runs === 1) await xs.write('/counter', '100'); // conflict on the first run
      await t.write('/counter', String(v + 1));
    });
    expect(runs).toBe(2);
    expect(await xs.read('/counter')).toBe('101');
  });

  it('rm and re-create in one transaction keeps the child order the transaction saw', async () => {
    const xs = s.dom0;
    for (const c of ['a', 'b', 'c']) await xs.write(`/o/${c}`, c);
    await xs.transaction(async (t) => {
      await t.rm('/o/a');
      await t.write('/o/d', 'd');
      await t.write('/o/a', 'again');
    });
    expect(await xs.directory('/o')).toEqual(['b', 'c', 'd', 'a']);
    expect(await xs.read('/o/a')).toBe('again');
  });
});
