/**
 * An RFB server (RFC 6143, "The Remote Framebuffer Protocol") showing a
 * TextScreen, the HVM guest's serial console, to VNC clients, and turning
 * their key presses into bytes for the guest's UART: what QEMU's `-vnc` with
 * its text console (ui/vnc.c, ui/console.c) gives a Xen HVM guest.
 *
 * Handshake (§7.1–7.3): the server offers version 3.8; a client answering
 * 3.8 or 3.7 gets the list of security types, a 3.3 client (and, per
 * §7.1.1, any other 3.x) is told the type: None (1), or VNC Authentication
 * (2, vnc-auth.ts) when the guest's config sets vncpasswd.  Then
 * ClientInit (the shared flag, ignored: every client shares the screen) and
 * ServerInit (640×400, 32-bit true colour, the guest's name).
 *
 * Messages (§7.5): SetPixelFormat is honoured (pixel-format.ts),
 * SetEncodings says whether the client takes CopyRect (everything else is
 * sent Raw, which all clients accept), FramebufferUpdateRequest is answered
 * at once when non-incremental and otherwise as soon as what the client
 * shows inside it is out of date (screen-diff.ts: a CopyRect for scrolling,
 * then one Raw rectangle per run of rows that differ),
 * KeyEvent goes to the guest as bytes (keysym.ts), PointerEvent and
 * ClientCutText are read and dropped.
 *
 * A client that breaks the protocol (a bad version string, an unknown
 * message type, a pixel format that cannot be served, a cut text over
 * MAX_CUT_TEXT, a handshake that does not finish in time) is disconnected
 * with the reason logged; nothing a client sends can throw out of here.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { KeyboardState } from './keysym.js';
import { planUpdate, sentScreen, type SentScreen } from './screen-diff.js';
import { VNC_CHALLENGE_LENGTH, vncAuthOk, vncChallenge } from './vnc-auth.js';
import { decodePixelFormat, encodePixelFormat, pixelFormatProblem, SERVER_PIXEL_FORMAT, type PixelFormat } from './pixel-format.js';
import {
  CLIENT_MSG, CLIENT_MSG_LENGTH, ENCODING, RECT_HEADER_LENGTH, RFB_SERVER_VERSION, RFB_VERSION_LENGTH, RFB_VERSION_RE,
  SECURITY, SECURITY_RESULT, SERVER_INIT_HEADER_LENGTH, SERVER_MSG, UPDATE_HEADER_LENGTH,
} from './rfb-protocol.js';
import { BACKGROUND, FOREGROUND, framebufferSize, renderRect, type Rect } from './text-renderer.js';
import type { TextScreen } from './text-screen.js';
import { FONT_HEIGHT } from './font-8x16.js';

/** Cut text longer than this is taken as hostile (a console has no use for a clipboard). */
export const MAX_CUT_TEXT = 1 << 20;
/** Unread input held for one client beyond this closes it (the largest legal message, SetEncodings with 65535 entries, is 256 KiB). */
const MAX_BUFFERED = 512 * 1024;
/** Output a client leaves unread beyond this closes it. */
const MAX_UNSENT = 16 * 1024 * 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CLIENTS = 16;
/** Screen changes are gathered this long before waiting clients are sent an update. */
const UPDATE_COALESCE_MS = 15;

/** The part of a pino logger the server uses. */
export interface RfbLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RfbServerOptions {
  screen: TextScreen;
  /** The desktop name in ServerInit (the guest's name). */
  name: string;
  /** Bytes typed by a client, for the guest's UART. */
  onKeyboard(bytes: Uint8Array): void;
  /** xl.cfg vncpasswd: clients must pass VNC Authentication (vnc-auth.ts); none: security type None. */
  password?: string;
  log?: RfbLog;
  maxClients?: number;
  handshakeTimeoutMs?: number;
}

export interface RfbServerStats {
  connections: number;
  refused: number;
  updates: number;
  /** Scrolls sent as CopyRect. */
  copyRects: number;
  keyBytes: number;
}

export class RfbServer {
  readonly server: Server;
  readonly stats: RfbServerStats = { connections: 0, refused: 0, updates: 0, copyRects: 0, keyBytes: 0 };
  private readonly clients = new Set<RfbConnection>();
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(readonly opts: RfbServerOptions) {
    this.server = createServer((s) => this.accept(s));
  }

  /** Listen on host:port; rejects with the socket error (EADDRINUSE ...). */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once('error', onError);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off('error', onError);
        this.server.on('error', (e) => this.opts.log?.warn({ err: e }, 'VNC listener error'));
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port });
      });
    });
  }

  /** The screen changed: clients waiting on an incremental request get their update shortly. */
  screenChanged(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      for (const c of this.clients) c.sendPendingUpdate();
    }, UPDATE_COALESCE_MS);
  }

  get clientCount(): number {
    return this.clients.size;
  }

  async close(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const c of this.clients) c.close('the server is closing', false);
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private accept(socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.clients.size >= (this.opts.maxClients ?? DEFAULT_MAX_CLIENTS)) {
      this.stats.refused++;
      this.opts.log?.warn({ peer, clients: this.clients.size }, 'VNC client refused: too many clients');
      socket.destroy();
      return;
    }
    this.stats.connections++;
    const c = new RfbConnection(this, socket, peer, () => this.clients.delete(c));
    this.clients.add(c);
    this.opts.log?.info({ peer }, 'VNC client connected');
  }
}

type ConnState = 'version' | 'security' | 'vnc-auth' | 'client-init' | 'normal' | 'closed';

/** One client: its handshake, its pixel format, its pending update request. */
class RfbConnection {
  private state: ConnState = 'version';
  private buf: Buffer = Buffer.alloc(0);
  /** Minor version agreed: 3, 7 or 8. */
  private minor = 8;
  private format: PixelFormat = SERVER_PIXEL_FORMAT;
  private encodings: number[] = [];
  private readonly keyboard = new KeyboardState();
  /** An incremental request not answered yet. */
  private pending: Rect | null = null;
  /** The text this client was last sent (screen-diff.ts); null: nothing yet, every row is owed. */
  private sent: SentScreen | null = null;
  /** The screen version at the last look, to skip comparing an unchanged screen. */
  private seenVersion = -1;
  /** The VNC Authentication challenge sent. */
  private challenge: Buffer | null = null;
  /** Bytes of a ClientCutText still to be read and dropped. */
  private skip = 0;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(private readonly srv: RfbServer, private readonly socket: Socket, private readonly peer: string, private readonly onGone: () => void) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.input(d));
    socket.on('error', (e) => this.close(`socket error: ${e.message}`, false));
    socket.on('close', () => this.gone());
    this.handshakeTimer = setTimeout(() => this.close(`no complete handshake within ${srv.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS} ms`), srv.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);
    socket.write(RFB_SERVER_VERSION, 'latin1');
  }

  close(reason: string, warn = true): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    const log = this.srv.opts.log;
    if (warn) log?.warn({ peer: this.peer, reason }, 'VNC client disconnected');
    else log?.info({ peer: this.peer, reason }, 'VNC client gone');
    this.socket.destroy();
    this.onGone();
  }

  /** Answer a waiting incremental request if what the client shows inside it is out of date. */
  sendPendingUpdate(): void {
    if (this.state !== 'normal' || !this.pending) return;
    const screen = this.srv.opts.screen;
    if (this.sent && this.seenVersion === screen.version) return; // nothing happened since
    const { width, height } = framebufferSize(screen);
    const whole = this.pending.x === 0 && this.pending.y === 0 && this.pending.w === width && this.pending.h === height;
    // CopyRect only for whole-screen requests, so the rows it moves are all the client's to move.
    const plan = planUpdate(screen, this.sent, whole && this.encodings.includes(ENCODING.COPY_RECT));
    const raw = bands(plan.rawRows).map((b) => intersect(b, this.pending!)).filter((r): r is Rect => r !== null);
    if (!raw.length && !plan.copy) {
      this.seenVersion = screen.version;
      return;
    }
    const sent = sentScreen(screen);
    // Rows owed but outside (or only partly inside) the request stay owed.
    for (const row of plan.rawRows) {
      const band = { x: 0, y: row * FONT_HEIGHT, w: width, h: FONT_HEIGHT };
      const got = intersect(band, this.pending);
      if (!got || got.w !== width || got.h !== FONT_HEIGHT) sent.unknown[row] = 1;
    }
    this.pending = null;
    this.sendUpdate(raw, plan.copy ? { by: plan.copy.by, width, height } : null);
    this.sent = sent;
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private gone(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    this.srv.opts.log?.info({ peer: this.peer }, 'VNC client left');
    this.onGone();
  }

  private input(d: Buffer): void {
    if (this.isClosed()) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    try {
      while (!this.isClosed() && this.step());
    } catch (e) {
      this.close(`internal error handling the client's message: ${(e as Error).message}`);
      return;
    }
    if (!this.isClosed() && this.buf.length > MAX_BUFFERED) this.close(`${this.buf.length} bytes of unparsed input`);
  }

  /** Consume one unit of input if complete; false when more bytes are needed. */
  private step(): boolean {
    if (this.skip > 0) {
      const n = Math.min(this.skip, this.buf.length);
      if (n === 0) return false;
      this.skip -= n;
      this.consume(n);
      return true;
    }
    switch (this.state) {
      case 'version':
        return this.readVersion();
      case 'security':
        return this.readSecurityChoice();
      case 'vnc-auth':
        return this.readVncAuthResponse();
      case 'client-init':
        return this.readClientInit();
      case 'normal':
        return this.readMessage();
      default:
        return false;
    }
  }

  private consume(n: number): Buffer {
    const head = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return head;
  }

  private readVersion(): boolean {
    if (this.buf.length < RFB_VERSION_LENGTH) return false;
    const text = this.consume(RFB_VERSION_LENGTH).toString('latin1');
    const m = RFB_VERSION_RE.exec(text);
    if (!m || Number(m[1]) !== 3) {
      this.close(`bad ProtocolVersion ${JSON.stringify(text)} (expected "RFB 003.00x\\n")`);
      return false;
    }
    // §7.1.1: 3.7 and 3.8 as themselves, newer 3.x as 3.8, anything else as 3.3.
    const minor = Number(m[2]);
    this.minor = minor >= 8 ? 8 : minor === 7 ? 7 : 3;
    const offered = this.offeredType();
    if (this.minor === 3) {
      // 3.3: the server decides, as a U32 (§7.1.2).
      this.socket.write(u32(offered));
      this.afterSecurityType(offered);
    } else {
      this.socket.write(Uint8Array.of(1, offered));
      this.state = 'security';
    }
    return true;
  }

  /** VNC Authentication when the guest's config has a vncpasswd, else None. */
  private offeredType(): number {
    return this.srv.opts.password ? SECURITY.VNC_AUTH : SECURITY.NONE;
  }

  /** The security type is settled: send a challenge, or (None) go on to ClientInit. */
  private afterSecurityType(type: number): void {
    if (type === SECURITY.VNC_AUTH) {
      this.challenge = vncChallenge();
      this.socket.write(this.challenge);
      this.state = 'vnc-auth';
      return;
    }
    // §7.1.3: 3.8 sends SecurityResult even for None; 3.3 and 3.7 do not.
    if (this.minor === 8) this.socket.write(u32(SECURITY_RESULT.OK));
    this.state = 'client-init';
  }

  private readVncAuthResponse(): boolean {
    if (this.buf.length < VNC_CHALLENGE_LENGTH) return false;
    const response = this.consume(VNC_CHALLENGE_LENGTH);
    if (!vncAuthOk(this.srv.opts.password!, this.challenge!, response)) {
      // §7.1.3: after VNC Authentication every version gets a SecurityResult; only 3.8 a reason.
      this.socket.write(this.minor === 8 ? securityFailure('authentication failed') : u32(SECURITY_RESULT.FAILED));
      this.close('VNC authentication failed (wrong password)');
      return false;
    }
    this.socket.write(u32(SECURITY_RESULT.OK));
    this.state = 'client-init';
    return true;
  }

  private readSecurityChoice(): boolean {
    if (this.buf.length < 1) return false;
    const type = this.consume(1)[0]!;
    if (type !== this.offeredType()) {
      if (this.minor === 8) this.socket.write(securityFailure(`security type ${type} was not offered`));
      this.close(`chose security type ${type}, which was not offered`);
      return false;
    }
    this.afterSecurityType(type);
    return true;
  }

  private readClientInit(): boolean {
    if (this.buf.length < 1) return false;
    this.consume(1); // shared-flag: the screen is always shared
    const { width, height } = framebufferSize(this.srv.opts.screen);
    const name = Buffer.from(this.srv.opts.name, 'utf8');
    const b = Buffer.alloc(SERVER_INIT_HEADER_LENGTH + name.length);
    b.writeUInt16BE(width, 0);
    b.writeUInt16BE(height, 2);
    encodePixelFormat(SERVER_PIXEL_FORMAT).copy(b, 4);
    b.writeUInt32BE(name.length, 20);
    name.copy(b, SERVER_INIT_HEADER_LENGTH);
    this.socket.write(b);
    this.state = 'normal';
    clearTimeout(this.handshakeTimer);
    this.srv.opts.log?.info({ peer: this.peer, version: `3.${this.minor}` }, 'VNC client initialised');
    return true;
  }

  private readMessage(): boolean {
    if (this.buf.length < 1) return false;
    const type = this.buf[0]!;
    switch (type) {
      case CLIENT_MSG.SET_PIXEL_FORMAT:
        return this.fixed(type, (m) => this.setPixelFormat(m));
      case CLIENT_MSG.SET_ENCODINGS: {
        if (this.buf.length < CLIENT_MSG_LENGTH[type]) return false;
        const n = this.buf.readUInt16BE(2);
        const len = CLIENT_MSG_LENGTH[type] + 4 * n;
        if (this.buf.length < len) return false;
        const m = this.consume(len);
        this.encodings = Array.from({ length: n }, (_, i) => m.readInt32BE(4 + 4 * i));
        this.srv.opts.log?.info({ peer: this.peer, encodings: this.encodings.slice(0, 32) }, 'VNC client encodings (CopyRect for scrolling if listed, else Raw)');
        return true;
      }
      case CLIENT_MSG.FRAMEBUFFER_UPDATE_REQUEST:
        return this.fixed(type, (m) => this.updateRequest(m[1] !== 0, { x: m.readUInt16BE(2), y: m.readUInt16BE(4), w: m.readUInt16BE(6), h: m.readUInt16BE(8) }));
      case CLIENT_MSG.KEY_EVENT:
        return this.fixed(type, (m) => this.keyEvent(m[1] !== 0, m.readUInt32BE(4)));
      case CLIENT_MSG.POINTER_EVENT:
        return this.fixed(type, () => undefined); // a text console has no pointer
      case CLIENT_MSG.CLIENT_CUT_TEXT: {
        if (this.buf.length < CLIENT_MSG_LENGTH[type]) return false;
        const len = this.buf.readUInt32BE(4);
        if (len > MAX_CUT_TEXT) {
          this.close(`ClientCutText of ${len} bytes (limit ${MAX_CUT_TEXT})`);
          return false;
        }
        this.consume(CLIENT_MSG_LENGTH[type]);
        this.skip = len; // read and dropped
        return true;
      }
      default:
        // The length of an unknown message is unknown: the stream cannot be followed.
        this.close(`unknown client message type ${type}`);
        return false;
    }
  }

  private fixed(type: keyof typeof CLIENT_MSG_LENGTH, handle: (m: Buffer) => void): boolean {
    const len = CLIENT_MSG_LENGTH[type];
    if (this.buf.length < len) return false;
    handle(this.consume(len));
    return true;
  }

  private setPixelFormat(m: Buffer): void {
    const f = decodePixelFormat(m, 4);
    const problem = pixelFormatProblem(f);
    if (problem) {
      this.close(`SetPixelFormat with ${problem}`);
      return;
    }
    this.format = f;
    this.sent = null; // what was sent is in the old format
    if (!f.trueColour) this.socket.write(colourMap());
  }

  private updateRequest(incremental: boolean, r: Rect): void {
    const { width, height } = framebufferSize(this.srv.opts.screen);
    const clipped = intersect(r, { x: 0, y: 0, w: width, h: height });
    if (!incremental) {
      this.pending = null;
      this.sendUpdate(clipped ? [clipped] : [], null);
      if (clipped && clipped.w === width && clipped.h === height) this.sent = sentScreen(this.srv.opts.screen);
      else if (clipped && this.sent) {
        // Those rows now show the current text, which the record of what was sent does not know.
        for (let row = Math.floor(clipped.y / FONT_HEIGHT); row * FONT_HEIGHT < clipped.y + clipped.h; row++) this.sent.unknown[row] = 1;
      }
      return;
    }
    if (!clipped) return; // nothing of the screen was asked for: nothing will ever change there
    this.pending = clipped;
    this.sendPendingUpdate();
  }

  private keyEvent(down: boolean, keysym: number): void {
    const bytes = this.keyboard.event(down, keysym);
    if (!bytes.length) return;
    this.srv.stats.keyBytes += bytes.length;
    this.srv.opts.onKeyboard(bytes);
  }

  /**
   * One FramebufferUpdate (§7.6.1): first the CopyRect scrolling the client's
   * pixels up (§7.7.2: source position after the header), then the Raw
   * rectangles (§7.7.1), applied in that order by the client.
   */
  private sendUpdate(rects: Rect[], scroll: { by: number; width: number; height: number } | null): void {
    const screen = this.srv.opts.screen;
    const parts: Buffer[] = [];
    const head = Buffer.alloc(UPDATE_HEADER_LENGTH);
    head.writeUInt8(SERVER_MSG.FRAMEBUFFER_UPDATE, 0);
    head.writeUInt16BE(rects.length + (scroll ? 1 : 0), 2);
    parts.push(head);
    if (scroll) {
      const shift = scroll.by * FONT_HEIGHT;
      const cr = rectHeader({ x: 0, y: 0, w: scroll.width, h: scroll.height - shift }, ENCODING.COPY_RECT);
      const src = Buffer.alloc(4);
      src.writeUInt16BE(0, 0);
      src.writeUInt16BE(shift, 2);
      parts.push(cr, src);
      this.srv.stats.copyRects++;
    }
    for (const r of rects) parts.push(rectHeader(r, ENCODING.RAW), renderRect(screen, this.format, r));
    this.seenVersion = screen.version;
    this.srv.stats.updates++;
    this.socket.write(Buffer.concat(parts));
    if (this.socket.writableLength > MAX_UNSENT) this.close(`${this.socket.writableLength} bytes of updates unread`);
  }
}

function rectHeader(r: Rect, encoding: number): Buffer {
  const b = Buffer.alloc(RECT_HEADER_LENGTH);
  b.writeUInt16BE(r.x, 0);
  b.writeUInt16BE(r.y, 2);
  b.writeUInt16BE(r.w, 4);
  b.writeUInt16BE(r.h, 6);
  b.writeInt32BE(encoding, 8);
  return b;
}

/** Runs of consecutive rows as pixel rectangles the full width of the screen. */
function bands(rows: number[]): Rect[] {
  const out: Rect[] = [];
  for (const r of rows) {
    const last = out[out.length - 1];
    if (last && last.y + last.h === r * FONT_HEIGHT) last.h += FONT_HEIGHT;
    else out.push({ x: 0, y: r * FONT_HEIGHT, w: Number.MAX_SAFE_INTEGER, h: FONT_HEIGHT });
  }
  return out;
}

function intersect(a: Rect, b: Rect): Rect | null {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  const w = Math.min(a.x + a.w, b.x + b.w) - x;
  const h = Math.min(a.y + a.h, b.y + b.h) - y;
  return w > 0 && h > 0 ? { x, y, w, h } : null;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

/** §7.1.3 SecurityResult failed, with its reason string (3.8). */
function securityFailure(reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8');
  const b = Buffer.alloc(8 + text.length);
  b.writeUInt32BE(SECURITY_RESULT.FAILED, 0);
  b.writeUInt32BE(text.length, 4);
  text.copy(b, 8);
  return b;
}

/** §7.6.2 SetColourMapEntries: index 0 the background, 1 the foreground (16-bit channels). */
function colourMap(): Buffer {
  const colours = [BACKGROUND, FOREGROUND];
  const b = Buffer.alloc(6 + 6 * colours.length);
  b.writeUInt8(SERVER_MSG.SET_COLOUR_MAP_ENTRIES, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(colours.length, 4);
  colours.forEach((c, i) => c.forEach((v, k) => b.writeUInt16BE(v * 257, 6 + 6 * i + 2 * k)));
  return b;
}
