/*
 * The few libc-like helpers picolibc's versions would bring errno (and so
 * thread-local storage) along for.  String and memory functions are picolibc's.
 */
#include "core.h"

unsigned long strtoul_(const char *s, const char **end, int base)
{
    unsigned long v = 0;
    while (*s == ' ') s++;
    if ((base == 0 || base == 16) && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) { s += 2; base = 16; }
    else if (base == 0) base = 10;
    const char *start = s;
    for (;; s++) {
        int d;
        if (*s >= '0' && *s <= '9') d = *s - '0';
        else if (*s >= 'a' && *s <= 'z') d = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'Z') d = *s - 'A' + 10;
        else break;
        if (d >= base) break;
        v = v * (unsigned long)base + (unsigned long)d;
    }
    if (end) *end = s == start ? start : s;
    return v;
}

long strtol_(const char *s, const char **end, int base)
{
    while (*s == ' ') s++;
    int neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    const char *e;
    unsigned long v = strtoul_(s, &e, base);
    if (end) *end = e;
    return neg ? -(long)v : (long)v;
}
