/* printk's formatter (format.c), shared by vsnprintk and printk. */
#ifndef PVKERNEL_FORMAT_H
#define PVKERNEL_FORMAT_H

#include "kernel.h"

struct sink {
    void (*put)(struct sink *, char);
    char *buf;
    size_t len, pos;   /* pos counts every byte put, kept or not */
};

/* Format into `o`; the number of bytes put. */
int vformat(struct sink *o, const char *fmt, va_list ap);

#endif
