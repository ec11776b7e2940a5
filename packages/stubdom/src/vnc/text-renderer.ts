/**
 * Draws a TextScreen as pixels: each cell is one 8×16 glyph (font-8x16.ts),
 * light grey on black like a VGA text console, and the cursor an underline
 * in the last two pixel rows of its cell (the VGA default cursor shape).
 * The framebuffer is cols×8 by rows×16 pixels, 640×400 for 80×25.
 */
import { FONT_HEIGHT, FONT_WIDTH, glyphRow } from './font-8x16.js';
import { pixelBytes, type PixelFormat, type Rgb } from './pixel-format.js';
import type { TextScreen } from './text-screen.js';

export const BACKGROUND: Rgb = [0, 0, 0];
export const FOREGROUND: Rgb = [0xc0, 0xc0, 0xc0];
/** Colour-map indices used for colour-map clients. */
export const BACKGROUND_INDEX = 0;
export const FOREGROUND_INDEX = 1;
const CURSOR_FIRST_LINE = FONT_HEIGHT - 2;

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export function framebufferSize(screen: TextScreen): { width: number; height: number } {
  return { width: screen.cols * FONT_WIDTH, height: screen.rows * FONT_HEIGHT };
}

/** The rectangle's pixels in format `f`, row by row (RFC 6143 §7.7.1 Raw encoding). */
export function renderRect(screen: TextScreen, f: PixelFormat, r: Rect): Buffer {
  const bg = pixelBytes(f, BACKGROUND, BACKGROUND_INDEX);
  const fg = pixelBytes(f, FOREGROUND, FOREGROUND_INDEX);
  const bpp = bg.length;
  // Pixels are written as whole units (native order reproduces the bytes pixelBytes laid out).
  const n = r.w * r.h;
  const units = bpp === 4 ? new Uint32Array(n) : bpp === 2 ? new Uint16Array(n) : new Uint8Array(n);
  const unit = (b: Buffer): number => (bpp === 4 ? new Uint32Array(Uint8Array.from(b).buffer)[0]! : bpp === 2 ? new Uint16Array(Uint8Array.from(b).buffer)[0]! : b[0]!);
  const on = unit(fg);
  const off = unit(bg);
  let at = 0;
  const lastCol = Math.floor((r.x + r.w - 1) / FONT_WIDTH);
  for (let y = r.y; y < r.y + r.h; y++) {
    const row = Math.floor(y / FONT_HEIGHT);
    const line = y % FONT_HEIGHT;
    const cursorLine = row === screen.cursorRow && line >= CURSOR_FIRST_LINE;
    for (let col = Math.floor(r.x / FONT_WIDTH); col <= lastCol; col++) {
      const bits = cursorLine && col === screen.cursorCol ? 0xff : glyphRow(screen.cells[row * screen.cols + col]!, line);
      const from = Math.max(col * FONT_WIDTH, r.x);
      const to = Math.min((col + 1) * FONT_WIDTH, r.x + r.w);
      for (let x = from; x < to; x++) units[at++] = bits & (0x80 >> (x % FONT_WIDTH)) ? on : off;
    }
  }
  return Buffer.from(units.buffer, units.byteOffset, units.byteLength);
}
