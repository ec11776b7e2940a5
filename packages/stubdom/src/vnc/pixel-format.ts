/**
 * RFB pixel formats (RFC 6143 §7.4): how a client wants each pixel's bytes.
 * The server offers 32 bits per pixel, 24-bit true colour, little-endian
 * (what most servers offer, QEMU's among them); a client may ask for any
 * other with SetPixelFormat, and the server must convert (§7.5.1).  Honoured
 * here: 8, 16 and 32 bits per pixel, either byte order, true colour with any
 * channel maxima and shifts, and colour-map formats (the server then sets
 * the map's first two entries itself, §7.6.2).
 */
import { PIXEL_FORMAT_LENGTH } from './rfb-protocol.js';

export interface PixelFormat {
  bitsPerPixel: number;
  depth: number;
  bigEndian: boolean;
  trueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

export type Rgb = readonly [number, number, number];

export const SERVER_PIXEL_FORMAT: PixelFormat = {
  bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true,
  redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0,
};

export function encodePixelFormat(f: PixelFormat): Buffer {
  const b = Buffer.alloc(PIXEL_FORMAT_LENGTH);
  b.writeUInt8(f.bitsPerPixel, 0);
  b.writeUInt8(f.depth, 1);
  b.writeUInt8(f.bigEndian ? 1 : 0, 2);
  b.writeUInt8(f.trueColour ? 1 : 0, 3);
  b.writeUInt16BE(f.redMax, 4);
  b.writeUInt16BE(f.greenMax, 6);
  b.writeUInt16BE(f.blueMax, 8);
  b.writeUInt8(f.redShift, 10);
  b.writeUInt8(f.greenShift, 11);
  b.writeUInt8(f.blueShift, 12);
  return b;
}

export function decodePixelFormat(b: Buffer, at = 0): PixelFormat {
  return {
    bitsPerPixel: b.readUInt8(at),
    depth: b.readUInt8(at + 1),
    bigEndian: b.readUInt8(at + 2) !== 0,
    trueColour: b.readUInt8(at + 3) !== 0,
    redMax: b.readUInt16BE(at + 4),
    greenMax: b.readUInt16BE(at + 6),
    blueMax: b.readUInt16BE(at + 8),
    redShift: b.readUInt8(at + 10),
    greenShift: b.readUInt8(at + 11),
    blueShift: b.readUInt8(at + 12),
  };
}

/** Why a client's pixel format cannot be served, or null if it can. */
export function pixelFormatProblem(f: PixelFormat): string | null {
  if (![8, 16, 32].includes(f.bitsPerPixel)) return `bits-per-pixel ${f.bitsPerPixel} (only 8, 16 and 32 are valid)`;
  if (!f.trueColour) return null;
  for (const [name, max, shift] of [['red', f.redMax, f.redShift], ['green', f.greenMax, f.greenShift], ['blue', f.blueMax, f.blueShift]] as const) {
    if (max === 0) return `${name}-max 0`;
    if (shift >= f.bitsPerPixel) return `${name}-shift ${shift} outside a ${f.bitsPerPixel}-bit pixel`;
  }
  return null;
}

/**
 * The bytes of one pixel of colour `rgb` (a true-colour format) or of
 * colour-map index `index` (a colour-map format).
 */
export function pixelBytes(f: PixelFormat, rgb: Rgb, index: number): Buffer {
  let v: number;
  if (f.trueColour) {
    const scale = (c: number, max: number): number => Math.round((c * max) / 255);
    v = (scale(rgb[0], f.redMax) << f.redShift) | (scale(rgb[1], f.greenMax) << f.greenShift) | (scale(rgb[2], f.blueMax) << f.blueShift);
  } else {
    v = index;
  }
  const n = f.bitsPerPixel / 8;
  const b = Buffer.alloc(n);
  if (n === 1) b.writeUInt8(v & 0xff);
  else if (n === 2) f.bigEndian ? b.writeUInt16BE(v & 0xffff) : b.writeUInt16LE(v & 0xffff);
  else f.bigEndian ? b.writeUInt32BE(v >>> 0) : b.writeUInt32LE(v >>> 0);
  return b;
}
