/*
 * String functions the drivers use.  The kernel links no libc; these are
 * the standard prototypes (so a compatible definition from the core or
 * picolibc serves), and the host-side unit tests get them from the host's
 * libc.
 */
#ifndef PVKERNEL_KLIB_H
#define PVKERNEL_KLIB_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* Parse an unsigned decimal (or 0x hex) number; -1 if `s` is not one. */
static inline int parse_u64(const char *s, unsigned long long *out)
{
    unsigned long long v = 0;
    int base = 10;
    if (!s || !*s) return -1;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) { base = 16; s += 2; if (!*s) return -1; }
    for (; *s; s++) {
        int d;
        if (*s >= '0' && *s <= '9') d = *s - '0';
        else if (base == 16 && *s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
        else if (base == 16 && *s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
        else return -1;
        v = v * (unsigned)base + (unsigned)d;
    }
    *out = v;
    return 0;
}

#endif
