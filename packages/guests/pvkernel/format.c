/*
 * printk's formatter: the subset of printf(3) the kernel uses, writing
 * through a sink (a buffer for vsnprintk, the console for printk).  Pure C:
 * the host unit tests build it (packages/guests/pvkernel/test/core-test.c).
 */
#include "format.h"

static void out_pad(struct sink *o, char c, int n) { while (n-- > 0) o->put(o, c); }

static int fmt_number(struct sink *o, unsigned long long v, int neg, unsigned base, int upper, int width, int zero, int left, int prec)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    int n = 0;
    do { tmp[n++] = digits[v % base]; v /= base; } while (v);
    while (n < prec && n < (int)sizeof tmp) tmp[n++] = '0';
    int len = n + (neg ? 1 : 0);
    if (!left && !zero) out_pad(o, ' ', width - len);
    if (neg) o->put(o, '-');
    if (!left && zero) out_pad(o, '0', width - len);
    while (n) o->put(o, tmp[--n]);
    if (left) out_pad(o, ' ', width - len);
    return len > width ? len : width;
}

/*
 * The subset of printf(3) the kernel uses: flags '-' '0', width and precision
 * (numbers or '*'), length h hh l ll z, conversions d i u x X o p s c %.
 */
int vformat(struct sink *o, const char *fmt, va_list ap)
{
    size_t before = o->pos;
    for (; *fmt; fmt++) {
        if (*fmt != '%') { o->put(o, *fmt); continue; }
        fmt++;
        int left = 0, zero = 0, width = 0, prec = -1, lng = 0, shrt = 0;
        for (;; fmt++) {
            if (*fmt == '-') left = 1;
            else if (*fmt == '0') zero = 1;
            else if (*fmt == ' ' || *fmt == '+' || *fmt == '#') continue;
            else break;
        }
        if (*fmt == '*') { width = va_arg(ap, int); if (width < 0) { left = 1; width = -width; } fmt++; }
        else while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        if (*fmt == '.') {
            fmt++;
            prec = 0;
            if (*fmt == '*') { prec = va_arg(ap, int); fmt++; }
            else while (*fmt >= '0' && *fmt <= '9') prec = prec * 10 + (*fmt++ - '0');
        }
        for (;; fmt++) {
            if (*fmt == 'l') lng++;
            else if (*fmt == 'z') lng = 1;
            else if (*fmt == 'h') shrt++;
            else break;
        }
        if (left) zero = 0;
        unsigned long long u;
        switch (*fmt) {
        case 'd': case 'i': {
            long long v = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
            if (shrt) v = shrt >= 2 ? (signed char)v : (short)v;
            u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
            fmt_number(o, u, v < 0, 10, 0, width, zero, left, prec);
            break;
        }
        case 'u': case 'x': case 'X': case 'o':
            u = lng >= 2 ? va_arg(ap, unsigned long long) : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            if (shrt) u = shrt >= 2 ? (unsigned char)u : (unsigned short)u;
            fmt_number(o, u, 0, *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16, *fmt == 'X', width, zero, left, prec);
            break;
        case 'p':
            o->put(o, '0');
            o->put(o, 'x');
            fmt_number(o, (uintptr_t)va_arg(ap, void *), 0, 16, 0, width > 2 ? width - 2 : 0, 1, 0, -1);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            int n = 0;
            while (s[n] && (prec < 0 || n < prec)) n++;
            if (!left) out_pad(o, ' ', width - n);
            for (int i = 0; i < n; i++) o->put(o, s[i]);
            if (left) out_pad(o, ' ', width - n);
            break;
        }
        case 'c':
            if (!left) out_pad(o, ' ', width - 1);
            o->put(o, (char)va_arg(ap, int));
            if (left) out_pad(o, ' ', width - 1);
            break;
        case '%': o->put(o, '%'); break;
        case '\0': fmt--; break;
        default: o->put(o, '%'); o->put(o, *fmt); break;
        }
    }
    return (int)(o->pos - before);
}

static void put_buf(struct sink *o, char c)
{
    if (o->pos + 1 < o->len) o->buf[o->pos] = c;
    o->pos++;
}

/* snprintf semantics: the length it would have had; buf always NUL-terminated when len > 0. */
int vsnprintk(char *buf, size_t len, const char *fmt, va_list ap)
{
    struct sink o = { put_buf, buf, len, 0 };
    vformat(&o, fmt, ap);
    if (len) buf[o.pos < len ? o.pos : len - 1] = '\0';
    return (int)o.pos;
}

int snprintk(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintk(buf, len, fmt, ap);
    va_end(ap);
    return n;
}
