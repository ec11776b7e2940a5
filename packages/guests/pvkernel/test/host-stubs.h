/*
 * Host-side stand-ins for the core's kernel.h functions, for the unit
 * tests of the drivers' pure parts (ring macros, the IP stack, the disk
 * pattern).  A fake clock: kernel_wait() jumps to its deadline.
 */
#ifndef PVKERNEL_TEST_HOST_STUBS_H
#define PVKERNEL_TEST_HOST_STUBS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../kernel.h"

static uint64_t fake_now = 1000000000ull;
static int quiet_printk = 1;

int vsnprintk(char *buf, size_t len, const char *fmt, va_list ap) { return vsnprintf(buf, len, fmt, ap); }
int snprintk(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n;
}
int printk(const char *fmt, ...)
{
    if (quiet_printk) return 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}
uint64_t now_ns(void) { return fake_now; }
/* What "the rest of the world" does while the kernel sleeps (a fake backend, a peer). */
static void (*wait_hook)(void);
void kernel_wait(uint64_t deadline_ns)
{
    if (wait_hook) {
        wait_hook();
        fake_now += 1000000;
        return;
    }
    fake_now = deadline_ns > fake_now ? deadline_ns : fake_now + 1000000;
}
domid_t xen_domid(void) { return 3; }
const char *kernel_cmdline(void) { return ""; }
const char *cmdline_value(const char *key) { (void)key; return NULL; }

static int failures, checks;
#define CHECK(cond, ...) do {                                                   \
    checks++;                                                                   \
    if (!(cond)) {                                                              \
        failures++;                                                             \
        printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                  \
        printf(__VA_ARGS__);                                                    \
        printf("\n");                                                           \
    }                                                                           \
} while (0)

static int report(const char *what)
{
    printf("%s: %d checks, %d failures\n", what, checks, failures);
    return failures ? 1 : 0;
}

#endif
