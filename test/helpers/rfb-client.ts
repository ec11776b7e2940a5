/**
 * A hand-written RFB client for tests (RFC 6143): raw bytes in, raw bytes
 * out, so a test sees exactly what the server sends and can send anything,
 * broken messages included.
 */
import { connect, type Socket } from 'node:net';
import { expect } from 'vitest';

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((res, rej) => {
      const s = connect({ host, port }, () => res(new RawClient(s)));
      s.once('error', rej);
    });
  }

  async read(n: number, ms = 3000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (this.buf.length < n) {
      if (this.closed) throw new Error(`connection closed with ${this.buf.length}/${n} bytes`);
      if (Date.now() > deadline) throw new Error(`timed out reading ${n} bytes (have ${this.buf.length})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Whether the server closes the connection within ms. */
  async closedWithin(ms = 3000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  pending(): number {
    return this.buf.length;
  }

  send(b: Buffer | number[] | string): void {
    this.sock.write(typeof b === 'string' ? Buffer.from(b, 'latin1') : Buffer.from(b));
  }

  /** Version 3.x handshake through ServerInit; returns ServerInit's fields. */
  async handshake(minor = 8): Promise<{ width: number; height: number; format: Buffer; name: string }> {
    expect((await this.read(12)).toString('latin1')).toBe('RFB 003.008\n');
    this.send(`RFB 003.00${minor}\n`);
    if (minor === 3) {
      expect((await this.read(4)).readUInt32BE(0)).toBe(1);
    } else {
      expect([...(await this.read(2))]).toEqual([1, 1]);
      this.send([1]);
      if (minor === 8) expect((await this.read(4)).readUInt32BE(0)).toBe(0);
    }
    this.send([1]); // ClientInit, shared
    const head = await this.read(24);
    const name = (await this.read(head.readUInt32BE(20))).toString('utf8');
    return { width: head.readUInt16BE(0), height: head.readUInt16BE(2), format: head.subarray(4, 20), name };
  }

  updateRequest(incremental: boolean, x = 0, y = 0, w = 640, h = 400): void {
    const b = Buffer.alloc(10);
    b[0] = 3;
    b[1] = incremental ? 1 : 0;
    b.writeUInt16BE(x, 2);
    b.writeUInt16BE(y, 4);
    b.writeUInt16BE(w, 6);
    b.writeUInt16BE(h, 8);
    this.send(b);
  }

  setEncodings(encodings: number[]): void {
    const b = Buffer.alloc(4 + 4 * encodings.length);
    b[0] = 2;
    b.writeUInt16BE(encodings.length, 2);
    encodings.forEach((e, i) => b.writeInt32BE(e, 4 + 4 * i));
    this.send(b);
  }

  key(down: boolean, keysym: number): void {
    const b = Buffer.alloc(8);
    b[0] = 4;
    b[1] = down ? 1 : 0;
    b.writeUInt32BE(keysym, 4);
    this.send(b);
  }

  /** One FramebufferUpdate: its rectangles with their Raw pixels. */
  async update(bpp = 4, ms = 3000): Promise<Array<{ x: number; y: number; w: number; h: number; encoding: number; pixels: Buffer }>> {
    const head = await this.read(4, ms);
    expect(head[0]).toBe(0);
    const rects = [];
    for (let i = 0; i < head.readUInt16BE(2); i++) {
      const r = await this.read(12, ms);
      const [x, y, w, h] = [r.readUInt16BE(0), r.readUInt16BE(2), r.readUInt16BE(4), r.readUInt16BE(6)];
      const encoding = r.readInt32BE(8);
      // CopyRect (1) carries only its source position; Raw (0) the pixels.
      rects.push({ x, y, w, h, encoding, pixels: await this.read(encoding === 1 ? 4 : w * h * bpp, ms) });
    }
    return rects;
  }
}

export type UpdateRect = Awaited<ReturnType<RawClient['update']>>[number];

/** Apply an update to a client-side 32-bpp framebuffer, as a viewer does (CopyRect, then Raw, in order). */
export function applyUpdate(fb: Buffer, width: number, rects: UpdateRect[]): void {
  for (const r of rects) {
    if (r.encoding === 1) {
      const sx = r.pixels.readUInt16BE(0);
      const sy = r.pixels.readUInt16BE(2);
      const copy = Buffer.alloc(r.w * r.h * 4);
      for (let y = 0; y < r.h; y++) fb.copy(copy, y * r.w * 4, ((sy + y) * width + sx) * 4, ((sy + y) * width + sx + r.w) * 4);
      for (let y = 0; y < r.h; y++) copy.copy(fb, ((r.y + y) * width + r.x) * 4, y * r.w * 4, (y + 1) * r.w * 4);
      continue;
    }
    for (let y = 0; y < r.h; y++) r.pixels.copy(fb, ((r.y + y) * width + r.x) * 4, y * r.w * 4, (y + 1) * r.w * 4);
  }
}
