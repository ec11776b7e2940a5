/*
 * xenbus: talking to xenstored over the xenstore ring (io/xs_wire.h,
 * docs/misc/xenstore-ring.txt; Linux drivers/xen/xenbus/xenbus_comms.c and
 * xenbus_xs.c, Mini-OS xenbus.c).
 *
 * The ring page and its event channel come from HVM_PARAM_STORE_PFN and
 * HVM_PARAM_STORE_EVTCHN (the toolstack allocated the port, unbound towards
 * xenstored's domain, and INTRODUCEd us).  Messages are a struct
 * xsd_sockmsg header and up to XENSTORE_PAYLOAD_MAX bytes of payload, which
 * may be longer than the 1 KiB rings: both directions stream, notifying the
 * port after every index update.
 *
 * Requests are synchronous (one outstanding, matched by req_id) and made
 * from the main loop only, never from an event handler: they sleep in
 * kernel_wait().  Watch events that come meanwhile, or between requests, are
 * noted per token for xenbus_watch_pending().  Error replies carry the errno
 * name ("ENOENT"): they come back as -XEN_ENOENT etc.
 */
#include <string.h>
#include "core.h"
#include "hypercall.h"

#define REQUEST_TIMEOUT_NS (10ULL * 1000 * 1000 * 1000)
#define MAX_WATCHES 32
#define TOKEN_MAX 64

static struct xenstore_domain_interface *ring;
static evtchn_port_t port;
static uint32_t next_req_id = 1;
static domid_t self_domid;
/* Set when xenstored broke the protocol (bad indexes, an over-long message): every request is then -EIO, as Linux gives up on the ring. */
static const char *broken;

/* The message being received (header, then payload as it streams in). */
static struct {
    struct xsd_sockmsg hdr;
    char body[XENSTORE_PAYLOAD_MAX + 1];
    size_t got;                 /* bytes of header + body received */
} in;

/* The reply to the outstanding request, once complete. */
static struct {
    int ready;
    uint32_t req_id, type, len;
    char body[XENSTORE_PAYLOAD_MAX + 1];
} reply;

static struct watch { char token[TOKEN_MAX]; int used, fired; } watches[MAX_WATCHES];

/* xsd_errors[] (io/xs_wire.h) with Xen's errno values. */
static const struct { const char *name; int err; } xs_errors[] = {
    { "EINVAL", XEN_EINVAL }, { "EACCES", XEN_EACCES }, { "EEXIST", XEN_EEXIST }, { "EISDIR", XEN_EISDIR },
    { "ENOENT", XEN_ENOENT }, { "ENOMEM", XEN_ENOMEM }, { "ENOSPC", XEN_ENOSPC }, { "EIO", XEN_EIO },
    { "ENOTEMPTY", XEN_ENOTEMPTY }, { "ENOSYS", XEN_ENOSYS }, { "EROFS", XEN_EROFS }, { "EBUSY", XEN_EBUSY },
    { "EAGAIN", XEN_EAGAIN }, { "EISCONN", XEN_EISCONN }, { "E2BIG", XEN_E2BIG }, { "EPERM", XEN_EPERM },
};

static int error_of(const char *name)
{
    for (size_t i = 0; i < sizeof xs_errors / sizeof xs_errors[0]; i++)
        if (!strcmp(name, xs_errors[i].name)) return -xs_errors[i].err;
    return -XEN_EINVAL;
}

int xenbus_available(void) { return ring != NULL; }
domid_t xen_domid(void) { return self_domid; }

/* ---------------------------------------------------------------- ring I/O */

static void on_xenstore_event(evtchn_port_t p, void *arg) { (void)p; (void)arg; }

static void watch_fired(const char *token)
{
    for (int i = 0; i < MAX_WATCHES; i++)
        if (watches[i].used && !strcmp(watches[i].token, token)) watches[i].fired = 1;
}

/* A whole message arrived: a watch event is noted, a reply is kept for xs_talk(). */
static void dispatch(void)
{
    in.body[in.hdr.len] = '\0';
    if (in.hdr.type == XS_WATCH_EVENT) {
        /* "path\0token\0" */
        size_t plen = strnlen(in.body, in.hdr.len);
        if (plen < in.hdr.len) watch_fired(in.body + plen + 1);
        return;
    }
    reply.req_id = in.hdr.req_id;
    reply.type = in.hdr.type;
    reply.len = in.hdr.len;
    memcpy(reply.body, in.body, in.hdr.len + 1);
    reply.ready = 1;
}

/* Take what xenstored has written; returns nonzero if anything was consumed. */
static void give_up(const char *why)
{
    if (!broken) printk("xenbus: %s: no more xenstore requests\n", why);
    broken = why;
}

static int poll_responses(void)
{
    int progress = 0;
    while (!broken) {
        uint32_t cons = ring->rsp_cons;
        uint32_t prod = __atomic_load_n(&ring->rsp_prod, __ATOMIC_ACQUIRE);
        if (prod - cons > XENSTORE_RING_SIZE) { give_up("xenstored's rsp indexes are more than a ring apart"); break; }
        if (cons == prod) return progress;
        size_t want = in.got < sizeof in.hdr ? sizeof in.hdr - in.got : sizeof in.hdr + in.hdr.len - in.got;
        size_t n = 0;
        char *dst = in.got < sizeof in.hdr ? (char *)&in.hdr + in.got : in.body + (in.got - sizeof in.hdr);
        while (n < want && cons != prod) dst[n++] = ring->rsp[cons++ & (XENSTORE_RING_SIZE - 1)];
        __atomic_store_n(&ring->rsp_cons, cons, __ATOMIC_RELEASE);
        evtchn_notify(port);
        progress = 1;
        in.got += n;
        if (in.got == sizeof in.hdr && in.hdr.len > XENSTORE_PAYLOAD_MAX) {
            give_up("a message from xenstored is over XENSTORE_PAYLOAD_MAX");
            break;
        }
        if (in.got == sizeof in.hdr + in.hdr.len) {
            dispatch();
            in.got = 0;
        }
    }
    return progress;
}

/* Write bytes into req[], waiting for room. */
static int ring_write(const char *data, size_t len, uint64_t deadline)
{
    while (len) {
        uint32_t cons = __atomic_load_n(&ring->req_cons, __ATOMIC_ACQUIRE);
        uint32_t prod = ring->req_prod;
        if (prod - cons > XENSTORE_RING_SIZE) { give_up("xenstored's req indexes are more than a ring apart"); return -XEN_EIO; }
        size_t room = XENSTORE_RING_SIZE - (prod - cons);
        if (room == 0) {
            poll_responses();   /* xenstored may be waiting for us to drain rsp[] */
            if (now_ns() > deadline) return -XEN_ETIMEDOUT;
            kernel_wait(deadline);
            continue;
        }
        while (room && len) {
            ring->req[prod++ & (XENSTORE_RING_SIZE - 1)] = *data++;
            room--;
            len--;
        }
        __atomic_store_n(&ring->req_prod, prod, __ATOMIC_RELEASE);
        evtchn_notify(port);
    }
    return 0;
}

/*
 * While a request waits for xenstored, the kernel is not idle: the network
 * keeps flowing through this hook (netfront's data path, which never calls
 * xenbus).  A frontend waiting for a restarted backend makes a few requests
 * per step; without the hook every one of them stopped the guest's pings
 * for the length of a xenstore round trip, which a busy host stretches to
 * a second.
 */
static void (*idle_hook)(void);
static int waiting;

void xenbus_set_idle(void (*fn)(void)) { idle_hook = fn; }
int xenbus_busy(void) { return waiting; }

static void wait_for_reply(uint64_t deadline)
{
    if (idle_hook && !waiting) {
        waiting = 1;
        idle_hook();
        waiting = 0;
    }
    if (!reply.ready) kernel_wait(deadline);
}

/*
 * One request: header + the NUL-separated parts; the reply payload in
 * reply.body (NUL-terminated), its length returned, or -errno.
 */
static int xs_talk(uint32_t type, xenbus_transaction_t t, const char *const *parts, const size_t *lens, int nparts)
{
    if (!ring) return -XEN_ENODEV;
    if (broken) return -XEN_EIO;
    size_t total = 0;
    for (int i = 0; i < nparts; i++) total += lens[i];
    if (total > XENSTORE_PAYLOAD_MAX) return -XEN_E2BIG;
    struct xsd_sockmsg hdr = { .type = type, .req_id = next_req_id++, .tx_id = t, .len = (uint32_t)total };
    uint64_t deadline = now_ns() + REQUEST_TIMEOUT_NS;
    reply.ready = 0;
    int rc = ring_write((const char *)&hdr, sizeof hdr, deadline);
    for (int i = 0; rc == 0 && i < nparts; i++) rc = ring_write(parts[i], lens[i], deadline);
    if (rc) return rc;
    for (;;) {
        poll_responses();
        if (broken) return -XEN_EIO;
        if (reply.ready && reply.req_id == hdr.req_id) break;
        reply.ready = 0;   /* a stale reply (an earlier request that timed out) */
        if (now_ns() > deadline) {
            printk("xenbus: no reply to request %u (type %u) in %llu s\n", hdr.req_id, type, REQUEST_TIMEOUT_NS / 1000000000ULL);
            return -XEN_ETIMEDOUT;
        }
        wait_for_reply(deadline);
    }
    reply.ready = 0;
    if (reply.type == XS_ERROR) return error_of(reply.body);
    if (reply.type != type) return -XEN_EIO;
    return (int)reply.len;
}

/* A request whose payload is "arg0\0arg1\0..." (every part with its NUL). */
static int xs_strings(uint32_t type, xenbus_transaction_t t, const char *a, const char *b)
{
    const char *parts[2] = { a, b };
    size_t lens[2] = { strlen(a) + 1, b ? strlen(b) + 1 : 0 };
    return xs_talk(type, t, parts, lens, b ? 2 : 1);
}

/* ---------------------------------------------------------------- the API */

int xenbus_read(xenbus_transaction_t t, const char *path, char *buf, size_t len)
{
    int n = xs_strings(XS_READ, t, path, NULL);
    if (n < 0) return n;
    if (!len) return -XEN_E2BIG;
    if ((size_t)n >= len) return -XEN_E2BIG;
    memcpy(buf, reply.body, (size_t)n);
    buf[n] = '\0';
    return n;
}

int xenbus_write(xenbus_transaction_t t, const char *path, const char *value)
{
    const char *parts[2] = { path, value };
    size_t lens[2] = { strlen(path) + 1, strlen(value) };   /* the value carries no NUL */
    int n = xs_talk(XS_WRITE, t, parts, lens, 2);
    return n < 0 ? n : 0;
}

int xenbus_printf(xenbus_transaction_t t, const char *dir, const char *node, const char *fmt, ...)
{
    char path[256], value[256];
    if ((size_t)snprintk(path, sizeof path, "%s/%s", dir, node) >= sizeof path) return -XEN_E2BIG;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintk(value, sizeof value, fmt, ap);
    va_end(ap);
    if ((size_t)n >= sizeof value) return -XEN_E2BIG;
    return xenbus_write(t, path, value);
}

int xenbus_read_int(xenbus_transaction_t t, const char *path, long *out)
{
    char buf[32];
    int n = xenbus_read(t, path, buf, sizeof buf);
    if (n < 0) return n;
    const char *end;
    long v = strtol_(buf, &end, 10);
    if (end == buf || *end) return -XEN_EINVAL;
    *out = v;
    return 0;
}

int xenbus_rm(xenbus_transaction_t t, const char *path)
{
    int n = xs_strings(XS_RM, t, path, NULL);
    return n < 0 ? n : 0;
}

int xenbus_ls(xenbus_transaction_t t, const char *path, char *buf, size_t len)
{
    int n = xs_strings(XS_DIRECTORY, t, path, NULL);
    if (n < 0) return n;
    if ((size_t)n > len) return -XEN_E2BIG;
    memcpy(buf, reply.body, (size_t)n);
    int count = 0;
    for (int i = 0; i < n; i++) count += reply.body[i] == '\0';
    return count;
}

int xenbus_transaction_start(xenbus_transaction_t *t)
{
    const char *parts[1] = { "" };
    size_t lens[1] = { 1 };
    int n = xs_talk(XS_TRANSACTION_START, XBT_NIL, parts, lens, 1);
    if (n < 0) return n;
    const char *end;
    *t = (xenbus_transaction_t)strtoul_(reply.body, &end, 10);
    return 0;
}

int xenbus_transaction_end(xenbus_transaction_t t, int abort, int *retry)
{
    *retry = 0;
    int n = xs_strings(XS_TRANSACTION_END, t, abort ? "F" : "T", NULL);
    if (n == -XEN_EAGAIN && !abort) { *retry = 1; return 0; }
    return n < 0 ? n : 0;
}

int xenbus_watch(const char *path, const char *token)
{
    if (strlen(token) >= TOKEN_MAX) return -XEN_E2BIG;
    int slot = -1;
    for (int i = 0; i < MAX_WATCHES && slot < 0; i++) if (!watches[i].used) slot = i;
    if (slot < 0) return -XEN_ENOSPC;
    strcpy(watches[slot].token, token);
    watches[slot].fired = 0;
    watches[slot].used = 1;
    int n = xs_strings(XS_WATCH, XBT_NIL, path, token);
    if (n < 0) { watches[slot].used = 0; return n; }
    return 0;
}

int xenbus_unwatch(const char *path, const char *token)
{
    int n = xs_strings(XS_UNWATCH, XBT_NIL, path, token);
    for (int i = 0; i < MAX_WATCHES; i++)
        if (watches[i].used && !strcmp(watches[i].token, token)) { watches[i].used = 0; break; }
    return n < 0 ? n : 0;
}

int xenbus_watch_fired(const char *token)
{
    if (ring) poll_responses();
    for (int i = 0; i < MAX_WATCHES; i++)
        if (watches[i].used && watches[i].fired && !strcmp(watches[i].token, token)) return 1;
    return 0;
}

int xenbus_watch_pending(const char *token)
{
    if (ring) poll_responses();
    for (int i = 0; i < MAX_WATCHES; i++) {
        if (watches[i].used && watches[i].fired && !strcmp(watches[i].token, token)) {
            watches[i].fired = 0;
            return 1;
        }
    }
    return 0;
}

int xenbus_switch_state(const char *dir, int state)
{
    return xenbus_printf(XBT_NIL, dir, "state", "%d", state);
}

int xenbus_wait_state(const char *dir, int min, int max, uint64_t timeout_ns)
{
    char path[256], token[TOKEN_MAX];
    static unsigned serial;
    snprintk(path, sizeof path, "%s/state", dir);
    snprintk(token, sizeof token, "wait-state-%u", serial++);
    int rc = xenbus_watch(path, token);
    if (rc) return rc;
    uint64_t deadline = now_ns() + timeout_ns;
    long state = XenbusStateUnknown;
    for (;;) {
        if (xenbus_read_int(XBT_NIL, path, &state) != 0) state = XenbusStateUnknown;
        if (state >= min && state <= max) break;
        if (now_ns() >= deadline) { state = -XEN_ETIMEDOUT; break; }
        while (!xenbus_watch_pending(token) && now_ns() < deadline) kernel_wait(deadline);
    }
    xenbus_unwatch(path, token);
    return (int)state;
}

/* ---------------------------------------------------------------- setup */

int xenbus_init(void)
{
    uint64_t pfn, evtchn;
    long rc = hvm_get_param(HVM_PARAM_STORE_PFN, &pfn);
    if (rc == 0) rc = hvm_get_param(HVM_PARAM_STORE_EVTCHN, &evtchn);
    if (rc) return (int)rc;
    if (pfn == 0) return -XEN_ENOENT;
    port = (evtchn_port_t)evtchn;
    ring = (struct xenstore_domain_interface *)(uintptr_t)(pfn << PAGE_SHIFT);
    evtchn_bind_handler(port, on_xenstore_event, NULL);
    /* Whatever xenstored wrote before we looked (nothing, normally): take it. */
    poll_responses();
    long id;
    rc = xenbus_read_int(XBT_NIL, "domid", &id);
    if (rc) {
        printk("xenbus: cannot read domid: %ld\n", rc);
        ring = NULL;
        evtchn_unbind_handler(port);
        return (int)rc;
    }
    self_domid = (domid_t)id;
    return 0;
}
