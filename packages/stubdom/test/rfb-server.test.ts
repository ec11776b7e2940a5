import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, applyUpdate } from '../../../test/helpers/rfb-client.js';
import { MAX_CUT_TEXT, SERVER_PIXEL_FORMAT, renderRect, RfbServer, TextScreen, XK, listenVnc, vncTarget, type RfbLog } from '@xenbox/stubdom';

interface Fixture {
  srv: RfbServer;
  screen: TextScreen;
  port: number;
  typed: number[];
  warnings: string[];
}

const servers: RfbServer[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.sock.destroy();
  for (const s of servers.splice(0)) await s.close();
});

async function start(opts: { handshakeTimeoutMs?: number; maxClients?: number } = {}): Promise<Fixture> {
  const screen = new TextScreen();
  const typed: number[] = [];
  const warnings: string[] = [];
  const log: RfbLog = { info: () => undefined, warn: (o, m) => warnings.push(`${m}: ${(o as { reason?: string }).reason ?? ''}`) };
  const srv = new RfbServer({ screen, name: 'guest-1', onKeyboard: (b) => typed.push(...b), log, ...opts });
  servers.push(srv);
  const { port } = await srv.listen('127.0.0.1', 0);
  return { srv, screen, port, typed, warnings };
}

async function client(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  clients.push(c);
  return c;
}

/** The 32-bit little-endian pixel at (x, y) of a full-screen Raw rectangle. */
const pixel = (p: Buffer, x: number, y: number, w = 640): number => p.readUInt32LE((y * w + x) * 4);
const FG = 0xc0c0c0;

describe('the RFB 3.8 handshake', () => {
  it('offers 3.8 and security None, and answers ClientInit with a 640x400 32-bit true-colour ServerInit named after the guest', async () => {
    const f = await start();
    const c = await client(f.port);
    const init = await c.handshake(8);
    expect(init.width).toBe(640);
    expect(init.height).toBe(400);
    // bpp 32, depth 24, little-endian, true colour, max 255/255/255, shifts 16/8/0, padding
    expect([...init.format]).toEqual([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
    expect(init.name).toBe('guest-1');
  });

  it('speaks 3.7 (no SecurityResult for None) and 3.3 (the server names the security type) to older clients', async () => {
    const f = await start();
    expect((await (await client(f.port)).handshake(7)).width).toBe(640);
    expect((await (await client(f.port)).handshake(3)).width).toBe(640);
  });

  it('tells a 3.8 client that picks a type it was not offered why, then closes', async () => {
    const f = await start();
    const c = await client(f.port);
    await c.read(12);
    c.send('RFB 003.008\n');
    await c.read(2);
    c.send([2]); // VncAuth: not offered
    const res = await c.read(8);
    expect(res.readUInt32BE(0)).toBe(1);
    expect((await c.read(res.readUInt32BE(4))).toString()).toContain('security type 2 was not offered');
    expect(await c.closedWithin()).toBe(true);
  });
});

describe('framebuffer updates', () => {
  it('sends the whole screen as one Raw rectangle for a non-incremental request, glyphs in light grey on black', async () => {
    const f = await start();
    f.screen.write(Buffer.from('U-Boot\r\n=> '));
    const c = await client(f.port);
    await c.handshake();
    c.updateRequest(false);
    const [r] = await c.update();
    expect(r).toMatchObject({ x: 0, y: 0, w: 640, h: 400, encoding: 0 });
    // 'U' row 2 is 0xc6 (11000110): pixels 0,1 lit, 2 dark; the cell below it is blank.
    expect(pixel(r!.pixels, 0, 2)).toBe(FG);
    expect(pixel(r!.pixels, 1, 2)).toBe(FG);
    expect(pixel(r!.pixels, 2, 2)).toBe(0);
    expect(pixel(r!.pixels, 0, 0)).toBe(0);
    // The cursor: an underline in the last two pixel rows of row 1, column 3.
    expect(pixel(r!.pixels, 3 * 8 + 4, 16 + 15)).toBe(FG);
    expect(pixel(r!.pixels, 3 * 8 + 4, 16 + 13)).toBe(0);
  });

  it('holds an incremental request until the screen changes, then sends only the changed rows', async () => {
    const f = await start();
    const c = await client(f.port);
    await c.handshake();
    c.updateRequest(false);
    await c.update();
    c.updateRequest(true);
    await new Promise((r) => setTimeout(r, 150));
    expect(c.pending()).toBe(0); // nothing changed: no answer yet
    f.screen.write(Buffer.from('\x1b[10;1Hhello'));
    f.srv.screenChanged();
    const rects = await c.update();
    // The cursor left row 0 and "hello" went to row 9: two bands of 16 pixel rows.
    expect(rects.map((r) => [r.y, r.h])).toEqual([[0, 16], [9 * 16, 16]]);
  });

  it('scrolls a CopyRect-capable client with one CopyRect and sends only the rows the copy does not get right', async () => {
    const f = await start();
    for (let i = 0; i < 24; i++) f.screen.write(Buffer.from(`line ${i}\r\n`));
    f.screen.write(Buffer.from('=> '));
    const c = await client(f.port);
    await c.handshake();
    c.setEncodings([1, 0]); // CopyRect, Raw
    c.updateRequest(false);
    const fb = Buffer.alloc(640 * 400 * 4);
    applyUpdate(fb, 640, await c.update());
    c.updateRequest(true);
    f.screen.write(Buffer.from('\r\nnext'));
    f.srv.screenChanged();
    const rects = await c.update();
    // Rows 1..24 move up a row; row 23 (the old prompt, its cursor gone) and row 24 ("next") follow as Raw.
    expect(rects.map((r) => [r.encoding, r.y, r.h])).toEqual([[1, 0, 384], [0, 23 * 16, 32]]);
    expect([rects[0]!.pixels.readUInt16BE(0), rects[0]!.pixels.readUInt16BE(2)]).toEqual([0, 16]);
    expect(f.srv.stats.copyRects).toBe(1);
    applyUpdate(fb, 640, rects);
    c.updateRequest(false);
    expect(fb.equals((await c.update())[0]!.pixels)).toBe(true); // the client's picture is the screen
  });

  it('sends every changed row as Raw to a client that did not list CopyRect', async () => {
    const f = await start();
    for (let i = 0; i < 25; i++) f.screen.write(Buffer.from(`line ${i}\r\n`));
    const c = await client(f.port);
    await c.handshake();
    c.setEncodings([0]);
    c.updateRequest(false);
    await c.update();
    c.updateRequest(true);
    f.screen.write(Buffer.from('more\r\n'));
    f.srv.screenChanged();
    // Rows 0..23 all changed (the text moved up); row 24 is blank with the cursor before and after.
    expect((await c.update()).map((r) => [r.encoding, r.y, r.h])).toEqual([[0, 0, 384]]);
  });

  it('keeps a CopyRect client\'s picture equal to the screen through 200 seeded random bursts of output', async () => {
    const f = await start();
    const c = await client(f.port);
    await c.handshake();
    c.setEncodings([1, 0]);
    c.updateRequest(false);
    const fb = Buffer.alloc(640 * 400 * 4);
    applyUpdate(fb, 640, await c.update());
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    // Mostly new lines (a console scrolls), with cursor jumps and erases now and then.
    const pieces = ['\r\n', '\r\n', 'line\r\n', 'text ', '\b', '\t', '\x1b[K', 'x'.repeat(85), '\n'.repeat(8), '=> ', '\x1b[2J', '\x1b[H', '\x1b[5;10H'];
    let outstanding = false;
    let quiet = 0;
    for (let i = 0; i < 200; i++) {
      if (!outstanding) c.updateRequest(true);
      outstanding = true;
      const burst = Array.from({ length: 1 + rand(6) }, () => pieces[rand(pieces.length)]).join('');
      f.screen.write(Buffer.from(burst));
      f.srv.screenChanged();
      const rects = await c.update(4, 300).catch(() => null);
      if (rects) {
        applyUpdate(fb, 640, rects);
        outstanding = false;
      } else {
        // No update: then nothing visible changed (the request stays pending for the next burst).
        quiet++;
        expect(fb.equals(renderRect(f.screen, SERVER_PIXEL_FORMAT, { x: 0, y: 0, w: 640, h: 400 })), `after ${JSON.stringify(burst)}`).toBe(true);
      }
    }
    expect(quiet).toBeLessThan(50);
    c.updateRequest(false);
    expect(fb.equals((await c.update())[0]!.pixels)).toBe(true);
    expect(f.srv.stats.copyRects).toBeGreaterThan(10);
  });

  it('clips a request to the screen and answers one wholly outside it with an empty update', async () => {
    const f = await start();
    const c = await client(f.port);
    await c.handshake();
    c.updateRequest(false, 600, 390, 100, 100);
    const [r] = await c.update();
    expect(r).toMatchObject({ x: 600, y: 390, w: 40, h: 10 });
    c.updateRequest(false, 1000, 1000, 10, 10);
    expect(await c.update()).toEqual([]);
  });

  it('honours SetPixelFormat: 16-bit big-endian RGB565, and an 8-bit colour map it fills itself', async () => {
    const f = await start();
    f.screen.write(Buffer.from('U'));
    const c = await client(f.port);
    await c.handshake();
    c.send([0, 0, 0, 0, 16, 16, 1, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0]);
    c.updateRequest(false, 0, 2, 3, 1);
    const [r] = await c.update(2);
    const grey565 = (Math.round((0xc0 * 31) / 255) << 11) | (Math.round((0xc0 * 63) / 255) << 5) | Math.round((0xc0 * 31) / 255);
    expect([r!.pixels.readUInt16BE(0), r!.pixels.readUInt16BE(2), r!.pixels.readUInt16BE(4)]).toEqual([grey565, grey565, 0]);

    c.send([0, 0, 0, 0, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const map = await c.read(6 + 12);
    expect([map[0], map.readUInt16BE(2), map.readUInt16BE(4)]).toEqual([1, 0, 2]);
    expect(map.readUInt16BE(12)).toBe(0xc0 * 257); // entry 1, red
    c.updateRequest(false, 0, 2, 3, 1);
    expect([...(await c.update(1))[0]!.pixels]).toEqual([1, 1, 0]);
  });
});

describe('keyboard input', () => {
  it('sends key presses to the guest as the bytes a terminal would: ASCII, CR, BS, TAB, ESC, arrows, Ctrl-C', async () => {
    const f = await start();
    const c = await client(f.port);
    await c.handshake();
    for (const k of [0x76, 0x65, 0x72, XK.Return, XK.BackSpace, XK.Tab, XK.Escape, XK.Up, XK.Left]) {
      c.key(true, k);
      c.key(false, k);
    }
    c.key(true, XK.Control_L);
    c.key(true, 0x63); // c
    c.key(false, 0x63);
    c.key(false, XK.Control_L);
    c.key(true, 0x63);
    c.updateRequest(false, 0, 0, 1, 1); // a round trip, so every key event has been read
    await c.update();
    expect(Buffer.from(f.typed).toString('latin1')).toBe('ver\r\b\t\x1b\x1b[A\x1b[D\x03c');
  });

  it('ignores pointer events and reads and drops cut text', async () => {
    const f = await start();
    const c = await client(f.port);
    await c.handshake();
    c.send([5, 1, 0, 10, 0, 10]);
    const cut = Buffer.alloc(8 + 5);
    cut[0] = 6;
    cut.writeUInt32BE(5, 4);
    cut.write('hello', 8);
    c.send(cut);
    c.key(true, 0x78);
    c.updateRequest(false, 0, 0, 1, 1);
    await c.update();
    expect(f.typed).toEqual([0x78]);
  });
});

describe('hostile clients are disconnected with a logged reason, and the server keeps serving', () => {
  it.each([
    ['a bad version string', (c: RawClient) => c.send('HTTP/1.1 200\r'), 'bad ProtocolVersion'],
    ['version 4.0', (c: RawClient) => c.send('RFB 004.000\n'), 'bad ProtocolVersion'],
  ])('%s', async (_what, act, reason) => {
    const f = await start();
    const c = await client(f.port);
    await c.read(12);
    act(c);
    expect(await c.closedWithin()).toBe(true);
    expect(f.warnings.join('\n')).toContain(reason);
    expect((await (await client(f.port)).handshake()).width).toBe(640);
  });

  it.each([
    ['an unknown message type', [99, 0, 0, 0], 'unknown client message type 99'],
    ['a ClientCutText of 4 GiB', [6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], `ClientCutText of 4294967295 bytes (limit ${MAX_CUT_TEXT})`],
    ['a 24-bit pixel format', [0, 0, 0, 0, 24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0], 'bits-per-pixel 24'],
    ['a true-colour format with a zero maximum', [0, 0, 0, 0, 32, 24, 0, 1, 0, 0, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0], 'red-max 0'],
    ['a shift outside the pixel', [0, 0, 0, 0, 16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 40, 5, 0, 0, 0, 0], 'red-shift 40'],
  ])('%s', async (_what, bytes, reason) => {
    const f = await start();
    const c = await client(f.port);
    await c.handshake();
    c.send(bytes);
    expect(await c.closedWithin()).toBe(true);
    expect(f.warnings.join('\n')).toContain(reason);
    expect((await (await client(f.port)).handshake()).width).toBe(640);
  });

  it('a client that stalls in the handshake is dropped after the timeout', async () => {
    const f = await start({ handshakeTimeoutMs: 200 });
    const c = await client(f.port);
    c.send('RFB 003.0');
    expect(await c.closedWithin(2000)).toBe(true);
    expect(f.warnings.join('\n')).toContain('no complete handshake within 200 ms');
  });

  it('a client that hangs up in the middle of a message costs nothing', async () => {
    const f = await start();
    const c = await client(f.port);
    await c.handshake();
    c.send([3, 0, 0]); // a third of a FramebufferUpdateRequest
    c.sock.end();
    await c.closedWithin();
    const d = await client(f.port);
    await d.handshake();
    d.updateRequest(false);
    expect((await d.update())[0]!.w).toBe(640);
    expect(f.srv.clientCount).toBe(1);
  });

  it('refuses connections beyond maxClients', async () => {
    const f = await start({ maxClients: 1 });
    const a = await client(f.port);
    await a.handshake();
    const b = await client(f.port);
    expect(await b.closedWithin()).toBe(true);
    expect(f.srv.stats.refused).toBe(1);
  });
});

describe('fuzzing the server with random client bytes', () => {
  it('never throws: each of 60 clients sending 4 KiB of seeded random bytes (before and after the handshake) is served or dropped, and the next client is served', async () => {
    const f = await start();
    let seed = 0x9e3779b9;
    const rand = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    for (let i = 0; i < 60; i++) {
      const c = await client(f.port);
      const junk = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(rand() * 256)));
      // Half of them first complete the handshake, and the junk starts with a plausible message type.
      if (i % 2) {
        await c.handshake();
        junk[0] = i % 7;
      }
      c.send(junk);
      await new Promise((r) => setTimeout(r, 5));
      c.sock.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(f.srv.clientCount).toBe(0);
    const d = await client(f.port);
    await d.handshake();
    d.updateRequest(false);
    expect((await d.update())[0]!.w).toBe(640);
  });
});

describe('where the server listens (xl.cfg vnclisten, vncdisplay, vncunused as libxl passes them to QEMU)', () => {
  it('reads vnclisten ADDRESS[:DISPLAY] and vncdisplay, and refuses both naming a display', () => {
    expect(vncTarget({ findUnused: false })).toEqual({ host: '127.0.0.1', display: 0 });
    expect(vncTarget({ listen: '0.0.0.0', display: 1, findUnused: false })).toEqual({ host: '0.0.0.0', display: 1 });
    expect(vncTarget({ listen: '127.0.0.1:7', findUnused: false })).toEqual({ host: '127.0.0.1', display: 7 });
    expect(vncTarget({ listen: '::1', findUnused: false })).toEqual({ host: '::1', display: 0 });
    expect(vncTarget({ listen: '[::1]:3', findUnused: false })).toEqual({ host: '::1', display: 3 });
    expect(() => vncTarget({ listen: '127.0.0.1:7', display: 2, findUnused: false })).toThrow('vncdisplay set, vnclisten contains display');
    expect(() => vncTarget({ listen: '127.0.0.1:x', findUnused: false })).toThrow('must be a number');
  });

  it('listens on port 5900 + display; with vncunused it moves on to the next free display, without it fails', async () => {
    const display = 100 + Math.floor(Math.random() * 800);
    const a = (await start()).srv;
    const make = (): RfbServer => {
      const s = new RfbServer({ ...a.opts });
      servers.push(s);
      return s;
    };
    const first = await listenVnc(make(), { display, findUnused: true });
    expect(first.port).toBe(5900 + first.display);
    const ep = await listenVnc(make(), { display: first.display, findUnused: true });
    expect(ep.display).toBeGreaterThan(first.display);
    expect(ep.port).toBe(5900 + ep.display);
    await expect(listenVnc(make(), { display: first.display, findUnused: false })).rejects.toThrow(/EADDRINUSE|address already in use/);
  });
});
