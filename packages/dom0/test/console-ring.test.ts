/**
 * xenconsoled's side of a guest's console ring (xenconsoled/console-ring.ts)
 * against a page in this process, as tools/console/daemon/io.c behaves.
 */
import { describe, expect, it } from 'vitest';
import { XENCONSOLE_CONNECTED, XENCONSOLE_DISCONNECTED, XENCONS_RING as R } from '@xenbox/abi';
import { silentLogger } from '@xenbox/libxen';
import { ConsoleRing } from '../src/xenconsoled/console-ring.js';

function ring() {
  const bytes = new Uint8Array(4096);
  const dv = new DataView(bytes.buffer);
  bytes[R.CONNECTION] = XENCONSOLE_DISCONNECTED;
  const page = {
    u32: (o: number) => dv.getUint32(o, true),
    setU32: (o: number, v: number) => dv.setUint32(o, v >>> 0, true),
    read: (o: number, n: number) => bytes.slice(o, o + n),
    write: (o: number, d: Uint8Array) => bytes.set(d, o),
  };
  const out: string[] = [];
  let notified = 0;
  const r = new ConsoleRing(3, { page, barrier: async () => {}, notify: () => void notified++, teardown: async () => {} }, (d) => out.push(Buffer.from(d).toString('latin1')), silentLogger());
  /** The guest writes output (hvc_xen's __write_console). */
  const guestWrite = (text: string) => {
    let prod = page.u32(R.OUT_PROD);
    for (const ch of Buffer.from(text, 'latin1')) bytes[R.OUT + (prod++ & (R.OUT_SIZE - 1))] = ch;
    page.setU32(R.OUT_PROD, prod);
  };
  /** The guest reads its input. */
  const guestRead = () => {
    let cons = page.u32(R.IN_CONS);
    const prod = page.u32(R.IN_PROD);
    let s = '';
    while (cons !== prod) s += String.fromCharCode(bytes[R.IN + (cons++ & (R.IN_SIZE - 1))]!);
    page.setU32(R.IN_CONS, cons);
    return s;
  };
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
  };
  return { r, page, bytes, out, guestWrite, guestRead, settle, notified: () => notified };
}

describe('a guest console ring in xenconsoled', () => {
  it('marks the ring connected and takes the guest\'s output across the ring\'s end', async () => {
    const t = ring();
    t.page.setU32(R.OUT_CONS, 2040);
    t.page.setU32(R.OUT_PROD, 2040);
    t.r.start();
    expect(t.bytes[R.CONNECTION]).toBe(XENCONSOLE_CONNECTED);
    t.guestWrite('hello, wrapped world\n');
    t.r.pump();
    await t.settle();
    expect(t.out.join('')).toBe('hello, wrapped world\n');
    expect(t.page.u32(R.OUT_CONS)).toBe(t.page.u32(R.OUT_PROD));
    expect(t.r.active).toBe(true);
  });

  it('ignores indexes that claim more than the 2048-byte ring, as Xen does', async () => {
    const t = ring();
    t.r.start();
    t.page.setU32(R.OUT_PROD, 5000);
    t.r.pump();
    await t.settle();
    expect(t.out).toEqual([]);
    expect(t.page.u32(R.OUT_CONS)).toBe(0);
  });

  it('puts keystrokes into in[] only as far as there is room, the rest after the guest reads', async () => {
    const t = ring();
    t.r.start();
    const typed = 'x'.repeat(1500);
    t.r.write(Buffer.from(typed));
    await t.settle();
    expect(t.page.u32(R.IN_PROD) - t.page.u32(R.IN_CONS)).toBe(R.IN_SIZE);
    const first = t.guestRead();
    t.r.pump(); // the guest's event after it read
    await t.settle();
    expect(first.length + t.guestRead().length).toBe(1500);
  });

  it('leaves an in[] whose indexes are broken alone', async () => {
    const t = ring();
    t.r.start();
    t.page.setU32(R.IN_PROD, 3000);
    t.r.write(Buffer.from('abc'));
    await t.settle();
    expect(t.page.u32(R.IN_PROD)).toBe(3000);
  });
});
