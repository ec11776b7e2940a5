/* Command-line words and key=value options for the workloads and shell commands (workloads.h). */
#include "kernel.h"
#include "klib.h"
#include "workloads.h"

int split_words(const char *s, char *buf, size_t len, char **argv, int max)
{
    size_t n = 0;
    int argc = 0;
    if (!s || !len) return 0;
    while (*s && argc < max) {
        while (*s == ' ' || *s == '\t' || *s == '\n') s++;
        if (!*s) break;
        argv[argc++] = buf + n;
        while (*s && *s != ' ' && *s != '\t' && *s != '\n' && n + 1 < len) buf[n++] = *s++;
        if (n + 1 >= len) { buf[n] = '\0'; break; }
        buf[n++] = '\0';
        while (*s && *s != ' ' && *s != '\t' && *s != '\n') s++;   /* truncated word: skip the rest */
    }
    return argc;
}

const char *opt_get(int argc, char **argv, const char *key)
{
    size_t k = strlen(key);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=') return argv[i] + k + 1;
    return NULL;
}

int opt_u64(int argc, char **argv, const char *key, uint64_t dflt, uint64_t *out)
{
    const char *v = opt_get(argc, argv, key);
    unsigned long long n;
    if (!v) { *out = dflt; return 0; }
    if (parse_u64(v, &n) < 0) {
        printk("%s: %s=%s is not a number\n", argv[0], key, v);
        return -1;
    }
    *out = n;
    return 0;
}

uint32_t crc32_update(uint32_t crc, const void *data, size_t len)
{
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    const uint8_t *p = data;
    crc = ~crc;
    while (len--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

void fmt_fixed(char *buf, size_t len, uint64_t v, unsigned decimals)
{
    uint64_t scale = 1;
    for (unsigned i = 0; i < decimals; i++) scale *= 10;
    if (!decimals) { snprintk(buf, len, "%lu", (unsigned long)v); return; }
    char frac[24];
    uint64_t f = v % scale;
    /* zero-pad the fraction by hand: printk need not support %0Nlu */
    for (int i = (int)decimals - 1; i >= 0; i--) { frac[i] = (char)('0' + f % 10); f /= 10; }
    frac[decimals] = '\0';
    snprintk(buf, len, "%lu.%s", (unsigned long)(v / scale), frac);
}
