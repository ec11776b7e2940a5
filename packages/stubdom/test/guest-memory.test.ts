/**
 * The DMA path's bookkeeping (guest-memory.ts): an access is cut at page
 * boundaries into foreign.read/write calls, all issued in one turn (one
 * batch frame on the wire), reassembled in order; the hypervisor's refusal
 * reaches the caller as the XenError it sent.  (That the hypervisor refuses
 * another domain's memory is test/hvm-disk.test.ts, against the real one.)
 */
import { describe, expect, it } from 'vitest';
import { XenError, type HypercallArgs, type HypercallOp } from '@xenbox/abi';
import { ForeignMemory, GUEST_MEMORY_MAX_ACCESS, pagePieces } from '@xenbox/stubdom';

/** A fake hypervisor: one domain's pages, every call recorded with the turn it was issued in. */
function fakeHv(allowed: number) {
  const pages = new Map<number, Uint8Array>();
  const calls: Array<{ op: string; gfn: number; turn: number }> = [];
  let turn = 0;
  /** Replies come in a later turn, as a real hypervisor's do (so an access that waited between its pieces would show). */
  const later = <T>(f: () => T): Promise<T> => new Promise((res, rej) => setImmediate(() => {
    turn++;
    try {
      res(f());
    } catch (e) {
      rej(e);
    }
  }));
  return {
    calls,
    hv: {
      call<O extends HypercallOp>(op: O, raw: HypercallArgs<O>): Promise<never> {
        const a = raw as unknown as { domid: number; gfn: number; offset?: number; len?: number; data?: Uint8Array };
        calls.push({ op, gfn: a.gfn, turn });
        return later(() => {
          if (a.domid !== allowed) throw new XenError('EPERM', `${op}: no privilege over d${a.domid}`);
          const page = pages.get(a.gfn) ?? pages.set(a.gfn, new Uint8Array(4096)).get(a.gfn)!;
          if (op === 'foreign.read') return page.slice(a.offset ?? 0, (a.offset ?? 0) + (a.len ?? 4096)) as never;
          page.set(a.data!, a.offset);
          return null as never;
        });
      },
    },
  };
}

describe('the DMA path (ForeignMemory)', () => {
  it('cuts an access at page boundaries', () => {
    expect(pagePieces(0x8000_0ff0n, 0x20)).toEqual([
      { gfn: 0x80000, offset: 0xff0, len: 0x10, at: 0 },
      { gfn: 0x80001, offset: 0, len: 0x10, at: 0x10 },
    ]);
    expect(pagePieces(0x8000_0000n, 3 * 4096).map((p) => [p.gfn, p.offset, p.len])).toEqual([[0x80000, 0, 4096], [0x80001, 0, 4096], [0x80002, 0, 4096]]);
    expect(pagePieces(0x8000_0000n, 0)).toEqual([]);
  });

  it('writes and reads back a range spanning pages, every piece of one access issued in the same turn', async () => {
    const f = fakeHv(5);
    const mem = new ForeignMemory(f.hv, 5);
    const data = Uint8Array.from({ length: 10_000 }, (_, i) => i & 0xff);
    await mem.write(0x8000_0800n, data);
    const writes = f.calls.filter((c) => c.op === 'foreign.write');
    expect(writes.map((c) => c.gfn)).toEqual([0x80000, 0x80001, 0x80002]);
    expect(new Set(writes.map((c) => c.turn)).size).toBe(1);
    expect(await mem.read(0x8000_0800n, data.length)).toEqual(data);
    expect(await mem.read(0x8000_0801n, 3)).toEqual(data.subarray(1, 4));
  });

  it('passes the hypervisor\'s refusal on as the XenError it sent (EPERM for a domain not its target)', async () => {
    const f = fakeHv(5);
    const err = await new ForeignMemory(f.hv, 6).read(0x8000_0000n, 16).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XenError);
    expect((err as XenError).errno).toBe('EPERM');
  });

  it('refuses a negative or huge range before asking the hypervisor anything', async () => {
    const f = fakeHv(5);
    const mem = new ForeignMemory(f.hv, 5);
    await expect(mem.read(0x8000_0000n, GUEST_MEMORY_MAX_ACCESS + 1)).rejects.toThrow(/E2BIG/);
    await expect(mem.read(-1n, 4)).rejects.toThrow(/EINVAL/);
    await expect(mem.write(2n ** 60n, new Uint8Array(4))).rejects.toThrow(/EFAULT/);
    expect(f.calls).toEqual([]);
  });
});
