/**
 * Reading a VNC snapshot back as text, to show it is legible: the JPEG
 * vncsnapshot saves is decoded by libjpeg-turbo's djpeg (when installed) to
 * a PPM, each 8×16 cell is thresholded to a bitmap, and the glyph of the
 * device model's font nearest to it (fewest differing pixels) is taken as
 * the character — a small OCR that only has to know one font.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { FONT_FIRST, FONT_HEIGHT, FONT_LAST, FONT_WIDTH, glyph } from '../../packages/stubdom/dist/index.js';

export const DJPEG = ['/usr/bin/djpeg', '/usr/local/bin/djpeg'].find((p) => existsSync(p));

export interface Picture {
  width: number;
  height: number;
  /** RGB, 3 bytes per pixel, row by row. */
  rgb: Buffer;
}

/** Decode a JPEG file with djpeg (null without it). */
export function decodeJpeg(file: string): Picture | null {
  if (!DJPEG) return null;
  const r = spawnSync(DJPEG, ['-pnm', file], { maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`djpeg ${file}: ${r.stderr.toString()}`);
  return readPpm(r.stdout);
}

/** A binary PPM (P6, maxval 255). */
export function readPpm(b: Buffer): Picture {
  const m = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(b.toString('latin1', 0, 64));
  if (!m) throw new Error('not a P6 PPM with maxval 255');
  const width = Number(m[1]);
  const height = Number(m[2]);
  return { width, height, rgb: b.subarray(m[0].length, m[0].length + width * height * 3) };
}

/** Pixels brighter than this count as ink (the console is light grey on black). */
const INK = 96;

/** How many pixels are ink. */
export function inkPixels(p: Picture): number {
  let n = 0;
  for (let i = 0; i < p.width * p.height; i++) if (luma(p, i) > INK) n++;
  return n;
}

/** The picture read back as lines of text (trailing spaces trimmed), one per cell row. */
export function recogniseText(p: Picture): string[] {
  const cols = Math.floor(p.width / FONT_WIDTH);
  const rows = Math.floor(p.height / FONT_HEIGHT);
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    let line = '';
    for (let c = 0; c < cols; c++) line += String.fromCharCode(bestGlyph(p, c * FONT_WIDTH, r * FONT_HEIGHT));
    lines.push(line.trimEnd());
  }
  return lines;
}

function bestGlyph(p: Picture, x0: number, y0: number): number {
  let best = 0x20;
  let bestCost = Infinity;
  for (let ch = FONT_FIRST; ch <= FONT_LAST; ch++) {
    const g = glyph(ch);
    let cost = 0;
    // The last two pixel rows hold the cursor underline: compare the 14 above.
    for (let y = 0; y < FONT_HEIGHT - 2 && cost < bestCost; y++) {
      for (let x = 0; x < FONT_WIDTH; x++) {
        const ink = luma(p, (y0 + y) * p.width + x0 + x) > INK;
        if (ink !== ((g[y]! & (0x80 >> x)) !== 0)) cost++;
      }
    }
    if (cost < bestCost) {
      bestCost = cost;
      best = ch;
    }
  }
  return best;
}

function luma(p: Picture, i: number): number {
  return (p.rgb[3 * i]! * 299 + p.rgb[3 * i + 1]! * 587 + p.rgb[3 * i + 2]! * 114) / 1000;
}
