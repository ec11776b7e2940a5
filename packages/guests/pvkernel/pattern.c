/* The seeded disk pattern of pattern.h (xorshift64 keyed by seed and sector). */
#include "pattern.h"

static uint64_t sector_state(uint64_t seed, uint64_t sector)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + (sector + 1) * 0xBF58476D1CE4E5B9ull;
    return x ? x : 1;
}

static inline uint64_t xorshift64(uint64_t x)
{
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

/* RISC-V is little-endian: a uint64_t store is the pattern's byte order. */
void pattern_fill(uint64_t seed, uint64_t sector, void *buf, size_t nsectors)
{
    uint64_t *w = buf;
    for (size_t s = 0; s < nsectors; s++) {
        uint64_t x = sector_state(seed, sector + s);
        for (unsigned i = 0; i < PATTERN_SECTOR / 8; i++) {
            x = xorshift64(x);
            *w++ = x;
        }
    }
}

long pattern_check(uint64_t seed, uint64_t sector, const void *buf, size_t nsectors)
{
    const uint64_t *w = buf;
    for (size_t s = 0; s < nsectors; s++) {
        uint64_t x = sector_state(seed, sector + s);
        for (unsigned i = 0; i < PATTERN_SECTOR / 8; i++) {
            x = xorshift64(x);
            if (*w++ != x) return (long)s;
        }
    }
    return -1;
}
