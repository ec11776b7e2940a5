/**
 * The disktest pattern of packages/guests/pvkernel/pattern.h, regenerated
 * on the host so tests can compare a guest's writes with the image file:
 * each 512-byte sector is 64 xorshift64 words (shifts 13/7/17) seeded by
 *   x = seed * 0x9E3779B97F4A7C15 + (sector + 1) * 0xBF58476D1CE4E5B9  (mod 2^64), 0 -> 1
 * stored little-endian.
 */
const MASK = (1n << 64n) - 1n;

export const PATTERN_SECTOR = 512;

export function patternSector(seed: bigint, sector: bigint): Buffer {
  let x = (seed * 0x9e3779b97f4a7c15n + (sector + 1n) * 0xbf58476d1ce4e5b9n) & MASK;
  if (x === 0n) x = 1n;
  const out = Buffer.alloc(PATTERN_SECTOR);
  for (let i = 0; i < PATTERN_SECTOR / 8; i++) {
    x ^= (x << 13n) & MASK;
    x ^= x >> 7n;
    x ^= (x << 17n) & MASK;
    out.writeBigUInt64LE(x, i * 8);
  }
  return out;
}

/** `count` sectors from `first`. */
export function patternSectors(seed: bigint, first: bigint, count: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) parts.push(patternSector(seed, first + BigInt(i)));
  return Buffer.concat(parts);
}
