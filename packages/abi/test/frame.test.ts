import { describe, expect, it } from 'vitest';
import { encode } from 'msgpackr';
import { BATCH_MAX_MSGS, XEN_ERRNO, XenError, decodeFrame, encodeFrame, toErrorValue } from '../src/index.js';

describe('frames', () => {
  it('round-trip a call, a reply, an error and an event, alone or batched', () => {
    const msgs = [
      { id: 1, op: 'xen_version', args: {} },
      { id: 1, ok: { major: 4 } },
      { id: 2, err: { errno: 'EINVAL' as const, message: 'bad' } },
      { ev: 'domain.destroyed', data: { domid: 3 } },
    ];
    for (const m of msgs) expect(decodeFrame(encodeFrame(m))).toEqual([m]);
    expect(decodeFrame(encodeFrame(msgs))).toEqual(msgs);
  });

  it('carry binary data as bytes', () => {
    const page = new Uint8Array(4096).fill(7);
    const [m] = decodeFrame(encodeFrame({ id: 9, ok: page }));
    expect(Buffer.from((m as { ok: Uint8Array }).ok).equals(Buffer.from(page))).toBe(true);
  });

  it('refuse anything that is not a message with EINVAL naming the problem', () => {
    const bad: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array(0), /empty frame/],
      [Buffer.from([0x82, 0xa1, 0x61]), /not msgpack/],
      [Buffer.from([0xc1]), /one of op, ev, ok or err/],
      [encode('hello'), /must be a map/],
      [encode({ id: 1.5, op: 'x' }), /call id/],
      [encode({ id: 2 ** 32, op: 'x' }), /call id/],
      [encode({ id: 1, op: '' }), /op must be/],
      [encode({ id: 1, err: { errno: 'EWHATEVER', message: 'x' } }), /Xen errno/],
      [encode({ foo: 1 }), /one of op, ev, ok or err/],
      [encode(Array.from({ length: BATCH_MAX_MSGS + 1 }, () => ({ ev: 'x' }))), /exceeds/],
    ];
    for (const [bytes, why] of bad) {
      let err: unknown;
      try {
        decodeFrame(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(XenError);
      expect((err as XenError).errno).toBe('EINVAL');
      expect((err as XenError).message).toMatch(why);
    }
  });
});

describe('errno', () => {
  it("uses Xen's numbers from public/errno.h", () => {
    expect(XEN_ERRNO.EPERM).toBe(1);
    expect(XEN_ERRNO.EAGAIN).toBe(11);
    expect(XEN_ERRNO.EACCES).toBe(13);
    expect(XEN_ERRNO.ENOSPC).toBe(28);
    expect(XEN_ERRNO.ENOSYS).toBe(38);
    expect(XEN_ERRNO.EOPNOTSUPP).toBe(95);
  });

  it('turns unexpected exceptions into EIO values and keeps XenErrors as they are', () => {
    expect(toErrorValue(new XenError('ENOENT', 'no such node'))).toEqual({ errno: 'ENOENT', message: 'no such node' });
    expect(toErrorValue(new TypeError('boom'))).toEqual({ errno: 'EIO', message: 'boom' });
  });
});
