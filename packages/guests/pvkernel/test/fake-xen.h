/*
 * Fake Xen services for host tests of the drivers (blkfront-test.c,
 * netfront-test.c): an in-memory xenstore (a flat table of paths), a grant
 * table that remembers which page each ref names, pages from the host's
 * allocator, event channels that only count notifications.  The including
 * test defines backend_step(), which plays the backend whenever the
 * frontend waits (xenbus_wait_state, kernel_wait via wait_hook).
 */
#ifndef PVKERNEL_TEST_FAKE_XEN_H
#define PVKERNEL_TEST_FAKE_XEN_H

#include "host-stubs.h"

/* ---- xenstore: a flat table of absolute-or-relative paths ---- */
#define XS_MAX 256
static struct { char path[128]; char value[128]; int used; } xs[XS_MAX];

static int xs_find(const char *path)
{
    for (int i = 0; i < XS_MAX; i++) if (xs[i].used && !strcmp(xs[i].path, path)) return i;
    return -1;
}
static void xs_set(const char *path, const char *value)
{
    int i = xs_find(path);
    for (int j = 0; i < 0 && j < XS_MAX; j++) if (!xs[j].used) i = j;
    xs[i].used = 1;
    snprintf(xs[i].path, sizeof(xs[i].path), "%s", path);
    snprintf(xs[i].value, sizeof(xs[i].value), "%s", value);
}
static const char *xs_get(const char *path)
{
    int i = xs_find(path);
    return i < 0 ? NULL : xs[i].value;
}
static void xs_rm_dir(const char *dir)
{
    size_t n = strlen(dir);
    for (int i = 0; i < XS_MAX; i++) if (xs[i].used && !strncmp(xs[i].path, dir, n)) xs[i].used = 0;
}

int xenbus_read(xenbus_transaction_t t, const char *path, char *buf, size_t len)
{
    (void)t;
    const char *v = xs_get(path);
    if (!v) return -XEN_ENOENT;
    snprintf(buf, len, "%s", v);
    return (int)strlen(buf);
}
int xenbus_write(xenbus_transaction_t t, const char *path, const char *value) { (void)t; xs_set(path, value); return 0; }
int xenbus_printf(xenbus_transaction_t t, const char *dir, const char *node, const char *fmt, ...)
{
    (void)t;
    char path[256], v[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof(v), fmt, ap);
    va_end(ap);
    snprintf(path, sizeof(path), "%s/%s", dir, node);
    xs_set(path, v);
    return 0;
}
int xenbus_read_int(xenbus_transaction_t t, const char *path, long *out)
{
    (void)t;
    const char *v = xs_get(path);
    if (!v) return -XEN_ENOENT;
    *out = strtol(v, NULL, 10);
    return 0;
}
int xenbus_rm(xenbus_transaction_t t, const char *path) { (void)t; xs_rm_dir(path); return 0; }
/* The distinct next path components under `path`, NUL-separated. */
int xenbus_ls(xenbus_transaction_t t, const char *path, char *buf, size_t len)
{
    (void)t;
    size_t n = strlen(path), used = 0;
    int count = 0;
    for (int i = 0; i < XS_MAX; i++) {
        if (!xs[i].used || strncmp(xs[i].path, path, n) || xs[i].path[n] != '/') continue;
        const char *c = xs[i].path + n + 1;
        size_t clen = strcspn(c, "/");
        int seen = 0;
        for (size_t off = 0; off < used && !seen; off += strlen(buf + off) + 1)
            seen = strlen(buf + off) == clen && !strncmp(buf + off, c, clen);
        if (seen || used + clen + 1 > len) continue;
        memcpy(buf + used, c, clen);
        buf[used + clen] = '\0';
        used += clen + 1;
        count++;
    }
    return count ? count : -XEN_ENOENT;
}
int xenbus_transaction_start(xenbus_transaction_t *t) { *t = 1; return 0; }
int xenbus_transaction_end(xenbus_transaction_t t, int abort, int *retry) { (void)t; (void)abort; *retry = 0; return 0; }
static int watch_fired;
int xenbus_watch(const char *path, const char *token) { (void)path; (void)token; return 0; }
int xenbus_unwatch(const char *path, const char *token) { (void)path; (void)token; return 0; }
int xenbus_watch_pending(const char *token) { (void)token; int f = watch_fired; watch_fired = 0; return f; }
int xenbus_watch_fired(const char *token) { (void)token; return watch_fired; }
int xenbus_switch_state(const char *dir, int state) { return xenbus_printf(XBT_NIL, dir, "state", "%d", state); }
void xenbus_set_idle(void (*fn)(void)) { (void)fn; }

/* What libxl's device removal does to a backend directory (xl block-detach / network-detach): online 0, state Closing. */
static void libxl_detach(const char *be_dir)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/online", be_dir);
    xs_set(p, "0");
    snprintf(p, sizeof(p), "%s/state", be_dir);
    xs_set(p, "5");
    watch_fired = 1;
}
int xenbus_busy(void) { return 0; }
/* The test's fake backend: runs whenever the front waits. */
static void backend_step(void);
int xenbus_wait_state(const char *dir, int min, int max, uint64_t timeout_ns)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/state", dir);
    uint64_t deadline = fake_now + timeout_ns;
    for (;;) {
        long st = 0;
        if (xenbus_read_int(XBT_NIL, path, &st) < 0) st = 0;
        if (st >= min && st <= max) return (int)st;
        if (fake_now >= deadline) return -XEN_ETIMEDOUT;
        backend_step();
        fake_now += 10000000;
    }
}

/* ---- grants, pages, events ---- */
#define GREFS 4096
static void *grant_page_of[GREFS];
static int grant_ro[GREFS];
static grant_ref_t next_gref = 8;
static int grants_live;

int gnttab_grant_access(domid_t dom, void *page, int readonly)
{
    (void)dom;
    for (grant_ref_t i = 0; i < GREFS; i++) {
        grant_ref_t r = (next_gref + i) % GREFS;
        if (r < 8 || grant_page_of[r]) continue;
        grant_page_of[r] = page;
        grant_ro[r] = readonly;
        next_gref = r + 1;
        grants_live++;
        return (int)r;
    }
    return -XEN_ENOSPC;
}
int gnttab_end_access(grant_ref_t ref)
{
    if (ref >= GREFS || !grant_page_of[ref]) return -XEN_EINVAL;
    grant_page_of[ref] = NULL;
    grants_live--;
    return 0;
}
void *page_alloc(void) { void *p = aligned_alloc(4096, 4096); memset(p, 0, 4096); return p; }
void page_free(void *p) { free(p); }
static evtchn_port_t next_port = 5;
static evtchn_handler_t handler;
static void *handler_arg;
static int notifies;
int evtchn_alloc_unbound(domid_t remote, evtchn_port_t *port) { (void)remote; *port = next_port++; return 0; }
void evtchn_bind_handler(evtchn_port_t port, evtchn_handler_t h, void *arg) { (void)port; handler = h; handler_arg = arg; }
void evtchn_unbind_handler(evtchn_port_t port) { (void)port; handler = NULL; }
int evtchn_notify(evtchn_port_t port) { (void)port; notifies++; return 0; }
int evtchn_close(evtchn_port_t port) { (void)port; return 0; }

#endif
