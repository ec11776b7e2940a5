import { describe, expect, it } from 'vitest';
import { encode } from 'msgpackr';
import { BATCH_MAX_BULK_BYTES, BATCH_MAX_MSGS, BULK_MIN_BYTES, frameBatches, BULK_REF_EXT, FRAME_MAX_BYTES, XEN_ERRNO, XenError, decodeFrame, decodeParts, encodeFrame, encodeParts, handOverBulk, toErrorValue } from '../src/index.js';

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

/** Throw-catch `f` and return the XenError, failing the test if it is anything else. */
function xenErrorOf(f: () => unknown): XenError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(XenError);
  return err as XenError;
}

/** `{id: 1, ok: <bulk reference (offset, len)>}` written by hand, as a hostile peer would. */
function refFrame(offset: number, len: number, refBytes = 8): Buffer {
  const ref = Buffer.alloc(refBytes);
  if (refBytes >= 8) {
    ref.writeUInt32BE(offset, 0);
    ref.writeUInt32BE(len, 4);
  }
  const ext = refBytes === 8 ? Buffer.from([0xd7, BULK_REF_EXT]) : Buffer.from([0xc7, refBytes, BULK_REF_EXT]);
  return Buffer.concat([Buffer.from([0x82, 0xa2, 0x69, 0x64, 0x01, 0xa2, 0x6f, 0x6b]), ext, ref]);
}

describe('bulk parts', () => {
  const pages = (n: number, from = 0) => Array.from({ length: n }, (_, i) => new Uint8Array(4096).fill(from + i));

  it('carry large byte strings beside the frame and give them back in order', () => {
    const data = pages(64);
    const msg = { id: 3, ok: data.map((d) => ({ status: 0, data: d })) };
    const parts = encodeParts(msg);
    expect(parts).toHaveLength(2);
    expect(parts[1]!.length).toBe(64 * 4096);
    expect(parts[0]!.length).toBeLessThan(2048); // the frame no longer holds the bytes
    const [m] = decodeParts(parts);
    const ok = (m as { ok: Array<{ status: number; data: Uint8Array }> }).ok;
    expect(ok).toHaveLength(64);
    ok.forEach((r, i) => expect(Buffer.from(r.data).equals(Buffer.from(data[i]!))).toBe(true));
  });

  it('keep short byte strings inline, so a message without large ones is one part', () => {
    const msg = { id: 4, op: 'x', args: { small: new Uint8Array(BULK_MIN_BYTES - 1).fill(1) } };
    const parts = encodeParts(msg);
    expect(parts).toHaveLength(1);
    expect(decodeParts(parts)).toEqual(decodeFrame(encodeFrame(msg)));
  });

  it('accept the one-part form of the same message (byte strings inline)', () => {
    const msg = { id: 5, ok: { data: new Uint8Array(8192).fill(9) } };
    expect(decodeFrame(encodeFrame(msg))).toEqual(decodeParts(encodeParts(msg)));
  });

  it('send a handed-over buffer as the bulk part without copying it, and copy anything else', () => {
    const buf = handOverBulk(Buffer.allocUnsafeSlow(4 * 4096).fill(5));
    const views = [0, 1, 2, 3].map((i) => buf.subarray(i * 4096, (i + 1) * 4096));
    const own = encodeParts({ id: 6, ok: views.map((data) => ({ status: 0, data })) });
    expect(own[1]!.buffer).toBe(buf.buffer);
    const notOwn = Buffer.allocUnsafeSlow(2 * 4096).fill(6);
    const copied = encodeParts({ id: 7, ok: [notOwn.subarray(0, 4096), notOwn.subarray(4096)] });
    expect(copied[1]!.buffer).not.toBe(notOwn.buffer);
    // Out of order views of a handed-over buffer are not one run: copied, and still right.
    const swapped = encodeParts({ id: 8, ok: [views[1]!, views[0]!] });
    expect(swapped[1]!.buffer).not.toBe(buf.buffer);
    expect(Buffer.from((decodeParts(swapped)[0] as { ok: Uint8Array[] }).ok[0]!).equals(views[1]!)).toBe(true);
  });

  it('refuse hostile multipart messages with EINVAL naming the problem', () => {
    const bulk = Buffer.alloc(4096, 1);
    const cases: Array<[string, Uint8Array[], RegExp]> = [
      ['no parts', [], /no parts/],
      ['extra parts', [refFrame(0, 4096), bulk, Buffer.from('extra')], /3 parts, at most 2/],
      ['a missing bulk part', [refFrame(0, 4096)], /without a bulk part/],
      ['an empty bulk part', [encode({ id: 1, ok: 1 }), new Uint8Array(0)], /empty bulk part/],
      ['bulk bytes nobody refers to', [encode({ id: 1, ok: 1 }), bulk], /4096 bytes no message refers to/],
      ['a reference past the end', [refFrame(0, 8192), bulk], /past the end/],
      ['a reference that skips bytes', [refFrame(16, 4080), bulk], /at offset 16, expected 0/],
      ['a reference covering part of the bulk', [refFrame(0, 100), bulk], /3996 bytes no message refers to/],
      ['a reference of the wrong size', [refFrame(0, 4096, 4), bulk], /bulk reference of 4 bytes/],
      ['an empty frame before a bulk part', [new Uint8Array(0), bulk], /empty frame/],
    ];
    for (const [what, parts, why] of cases) {
      const err = xenErrorOf(() => decodeParts(parts));
      expect(err.errno, what).toBe('EINVAL');
      expect(err.message, what).toMatch(why);
    }
  });

  it('refuse an oversize bulk part', () => {
    const err = xenErrorOf(() => decodeParts([refFrame(0, FRAME_MAX_BYTES + 1), new Uint8Array(FRAME_MAX_BYTES + 1)]));
    expect(err.message).toMatch(/bulk part of \d+ bytes exceeds/);
  });

  it("refuse msgpackr's own extensions, which no xenbox sender writes", () => {
    for (const [what, bytes] of [
      ['a RegExp', Buffer.from([0xd4, 0x78, 0x00, 0x92, 0xa1, 0x61, 0xa0])],
      ['a Set', Buffer.from([0xd4, 0x73, 0x00, 0x90])],
      ['a typed array', Buffer.from([0xc7, 0x02, 0x74, 0x00, 0x00])],
    ] as const) {
      const err = xenErrorOf(() => decodeFrame(bytes));
      expect(err.errno, what).toBe('EINVAL');
      expect(err.message, what).toMatch(/not part of the xenbox wire format/);
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

describe('batching queued messages into frames', () => {
  it('never puts more than BATCH_MAX_BULK_BYTES of byte strings or BATCH_MAX_MSGS messages in one frame, and keeps the order', () => {
    // Eight 2 MiB replies (eight netfronts connecting at once) once made one 16 MiB bulk part the peer refused.
    const replies = Array.from({ length: 8 }, (_, i) => ({ id: i + 1, ok: { pages: [new Uint8Array(2 << 20)] } }));
    const batches = frameBatches(replies);
    expect(batches.length).toBeGreaterThan(1);
    for (const b of batches) {
      const parts = encodeParts(b.length === 1 ? b[0]! : b);
      expect(parts.reduce((n, p) => n + p.byteLength, 0)).toBeLessThanOrEqual(BATCH_MAX_BULK_BYTES + 4096);
      expect(decodeParts(parts).map((m) => (m as { id: number }).id)).toEqual(b.map((m) => m.id));
    }
    expect(batches.flat()).toEqual(replies);
    const small = Array.from({ length: BATCH_MAX_MSGS + 5 }, (_, i) => ({ ev: 'e', data: i }));
    expect(frameBatches(small).map((b) => b.length)).toEqual([BATCH_MAX_MSGS, 5]);
    // One message bigger than the budget still goes, alone.
    expect(frameBatches([{ id: 1, ok: new Uint8Array(BATCH_MAX_BULK_BYTES + 1) }, { id: 2, ok: 1 }]).map((b) => b.length)).toEqual([1, 1]);
  });
});
