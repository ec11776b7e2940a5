/*
 * The disk test pattern: every 512-byte sector has contents determined by
 * (seed, sector number) alone, so that any sector can be checked on its own
 * and the host can regenerate the image (test/pv-devices.test.ts does, in
 * TypeScript, from this definition):
 *
 *   x = seed * 0x9E3779B97F4A7C15 + (sector + 1) * 0xBF58476D1CE4E5B9   (mod 2^64)
 *   if x == 0: x = 1
 *   64 times: x ^= x << 13; x ^= x >> 7; x ^= x << 17;  emit x as 8 bytes, little-endian
 *
 * (Marsaglia's xorshift64, "Xorshift RNGs", 2003, shifts 13/7/17.)
 */
#ifndef PVKERNEL_PATTERN_H
#define PVKERNEL_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#define PATTERN_SECTOR 512u

/* Fill `nsectors` sectors starting at `sector` into buf (8-byte aligned). */
void pattern_fill(uint64_t seed, uint64_t sector, void *buf, size_t nsectors);
/* Index of the first sector in buf that does not match, or -1 if all do. */
long pattern_check(uint64_t seed, uint64_t sector, const void *buf, size_t nsectors);

#endif
