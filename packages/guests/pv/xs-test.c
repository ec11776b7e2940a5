/*
 * pv-xs-test: a guest's way to xenstored and xenconsoled, end to end
 * (test/guest-rings.test.ts; docs/pv-guest-abi.md "Start info").
 *
 *   1. HVMOP_get_param: the xenstore and console rings and their ports;
 *      HVMOP_set_param is refused (-EPERM);
 *   2. events_init (shared_info, upcalls), grant_init (frame 0 placed in
 *      our RAM): the toolstack's entries 0 (console) and 1 (xenstore) are
 *      still there;
 *   3. xenstore over the ring (Linux drivers/xen/xenbus/xenbus_comms.c,
 *      xb_write/xb_read): WRITE data/hello, READ it back, READ name, READ
 *      /local/domain/0/name (EACCES), WATCH data and see its events; then
 *      times 100 back-to-back READs;
 *   4. the console ring (drivers/tty/hvc/hvc_xen.c): write a line, read a
 *      line typed at `xl console`;
 *   5. then each typed line makes one more xenstore READ ("quit" shuts
 *      down), so a test can poke the ring from outside between requests.
 *
 * Progress goes to the SBI console as "xs-test: ..." lines; what goes over
 * the console ring says "ring: ...".
 */
#include "../pvh/guest.h"
#include "events.h"
#include "grant.h"

#define EPERM 1
#define mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)

static struct xenstore_domain_interface *xs;
static struct xencons_interface *cons;
static evtchn_port_t xs_port, cons_port;
static uint32_t req_ids = 1;

static void say(const char *what, long v)
{
    puts_("xs-test: ");
    puts_(what);
    if (v < 0) { putc_('-'); v = -v; }
    putdec((ulong)v);
    puts_("\n");
}

static void fail(const char *what, long v)
{
    say(what, v);
    guest_shutdown(SHUTDOWN_crash);
}

static uint64_t get_param(uint32_t index)
{
    struct xen_hvm_param p = { .domid = DOMID_SELF, .index = index };
    long rc = xen_hypercall(__HYPERVISOR_hvm_op, HVMOP_get_param, (ulong)&p, 0);
    if (rc) fail("get_param failed: ", rc);
    return p.value;
}

static void on_event(evtchn_port_t port) { (void)port; }

static unsigned str_len(const char *s) { unsigned n = 0; while (s[n]) n++; return n; }

static int str_eq(const char *a, const char *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++) if (a[i] != b[i]) return 0;
    return 1;
}

/* ---------------------------------------------------------------- xenstore */

static int xs_broken(void) { return xs->error != 0; }
static int xs_req_space(void) { return xs->error || xs->req_prod - xs->req_cons < XENSTORE_RING_SIZE; }
static int xs_rsp_data(void) { return xs->error || xs->rsp_prod != xs->rsp_cons; }

/* xb_write(): copy into req[] as space allows, publish req_prod after a barrier, notify. */
static int xs_write_bytes(const void *data, unsigned len)
{
    const char *p = data;
    while (len) {
        if (xs->req_prod - xs->req_cons > XENSTORE_RING_SIZE) {
            /* Indexes nobody sane wrote: tell xenstored and see what it says. */
            puts_("xs-test: ring indexes broken\n");
            evtchn_send(xs_port);
            wait_until(xs_broken);
            return -1;
        }
        wait_until(xs_req_space);
        if (xs->error) return -1;
        uint32_t prod = xs->req_prod;
        mb();
        unsigned avail = XENSTORE_RING_SIZE - (prod - xs->req_cons);
        unsigned chunk = XENSTORE_RING_SIZE - MASK_XENSTORE_IDX(prod);
        if (chunk > avail) chunk = avail;
        if (chunk > len) chunk = len;
        for (unsigned i = 0; i < chunk; i++) xs->req[MASK_XENSTORE_IDX(prod + i)] = p[i];
        mb();
        xs->req_prod = prod + chunk;
        evtchn_send(xs_port);
        p += chunk;
        len -= chunk;
    }
    return 0;
}

/*
 * xb_read(): take from rsp[] as it arrives and publish rsp_cons.  xenstored
 * waits for our signal when the ring was full: we give it before we wait
 * for more, and after each whole message (xs_consumed()), one per reply
 * rather than one per piece.
 */
static int rsp_unsignalled;

static void xs_consumed(void)
{
    if (rsp_unsignalled) evtchn_send(xs_port);
    rsp_unsignalled = 0;
}

static int xs_read_bytes(void *data, unsigned len)
{
    char *p = data;
    while (len) {
        if (!xs_rsp_data()) xs_consumed();
        wait_until(xs_rsp_data);
        if (xs->error) return -1;
        uint32_t c = xs->rsp_cons;
        uint32_t prod = xs->rsp_prod;
        mb();
        unsigned avail = prod - c;
        unsigned chunk = XENSTORE_RING_SIZE - MASK_XENSTORE_IDX(c);
        if (chunk > avail) chunk = avail;
        if (chunk > len) chunk = len;
        for (unsigned i = 0; i < chunk; i++) p[i] = xs->rsp[MASK_XENSTORE_IDX(c + i)];
        mb();
        xs->rsp_cons = c + chunk;
        rsp_unsignalled = 1;
        p += chunk;
        len -= chunk;
    }
    return 0;
}

static char reply[XENSTORE_PAYLOAD_MAX + 1];
static char event[XENSTORE_PAYLOAD_MAX + 1];
static unsigned event_len;
static int events_seen;

/*
 * One request, its reply into reply[]: the reply's type (XS_ERROR: the
 * errno name is in reply[]) or -1 if the ring broke.  Watch events that
 * come first are kept (the last one) in event[].
 */
static long xs_request(uint32_t type, const char *a, const char *b, unsigned *len_out)
{
    unsigned la = str_len(a) + 1, lb = b ? str_len(b) : 0;
    /* WRITE's value has no NUL; the other requests' arguments each have one. */
    struct xsd_sockmsg m = { .type = type, .req_id = req_ids++, .tx_id = 0, .len = la + lb + (b && type != XS_WRITE ? 1 : 0) };
    /* The whole message in one go: one signal per request. */
    static char msg[sizeof m + XENSTORE_PAYLOAD_MAX];
    const char *hdr = (const char *)&m;
    unsigned n = 0;
    for (unsigned i = 0; i < sizeof m; i++) msg[n++] = hdr[i];
    for (unsigned i = 0; i < la; i++) msg[n++] = a[i];
    for (unsigned i = 0; b && i < m.len - la; i++) msg[n++] = b[i];
    if (xs_write_bytes(msg, n)) return -1;
    for (;;) {
        struct xsd_sockmsg r;
        if (xs_read_bytes(&r, sizeof r)) return -1;
        if (r.len > XENSTORE_PAYLOAD_MAX) fail("reply too long: ", r.len);
        char *dst = r.type == XS_WATCH_EVENT ? event : reply;
        if (xs_read_bytes(dst, r.len)) return -1;
        xs_consumed();
        dst[r.len] = 0;
        if (r.type == XS_WATCH_EVENT) {
            event_len = r.len;
            events_seen++;
            continue;
        }
        if (r.req_id != m.req_id) fail("reply to another request: ", r.req_id);
        if (len_out) *len_out = r.len;
        return r.type;
    }
}

/* Wait for the next watch event (one may have come with a reply already). */
static int xs_wait_event(int seen_before)
{
    while (events_seen == seen_before) {
        struct xsd_sockmsg r;
        if (xs_read_bytes(&r, sizeof r) || r.len > XENSTORE_PAYLOAD_MAX) return -1;
        char *dst = r.type == XS_WATCH_EVENT ? event : reply;
        if (xs_read_bytes(dst, r.len)) return -1;
        xs_consumed();
        dst[r.len] = 0;
        if (r.type == XS_WATCH_EVENT) { event_len = r.len; events_seen++; }
    }
    return 0;
}

static void show(const char *label, long type, unsigned len)
{
    puts_("xs-test: ");
    puts_(label);
    if (type < 0) { puts_(" ring error="); putdec(xs->error); puts_("\n"); return; }
    puts_(type == XS_ERROR ? " error " : " = ");
    for (unsigned i = 0; i < len && reply[i]; i++) putc_(reply[i]);
    puts_("\n");
}

/* ---------------------------------------------------------------- console ring */

static int cons_out_space(void) { return cons->out_prod - cons->out_cons < sizeof cons->out; }
static int cons_in_data(void) { return cons->in_cons != cons->in_prod; }

/* hvc_xen's __write_console(): into out[] as room allows, out_prod after a barrier, notify. */
static void ring_puts(const char *s)
{
    while (*s) {
        wait_until(cons_out_space);
        uint32_t prod = cons->out_prod;
        mb();
        while (*s && prod - cons->out_cons < sizeof cons->out) cons->out[prod++ & (sizeof cons->out - 1)] = *s++;
        mb();
        cons->out_prod = prod;
        evtchn_send(cons_port);
    }
}

/* A line typed at `xl console` (without its end), from in[]. */
static unsigned ring_getline(char *buf, unsigned max)
{
    unsigned n = 0;
    for (;;) {
        wait_until(cons_in_data);
        uint32_t c = cons->in_cons;
        uint32_t prod = cons->in_prod;
        mb();
        int done = 0;
        while (c != prod && !done) {
            char ch = cons->in[c++ & (sizeof cons->in - 1)];
            if (ch == '\r' || ch == '\n') done = n > 0;
            else if (n < max - 1) buf[n++] = ch;
        }
        mb();
        cons->in_cons = c;
        evtchn_send(cons_port);
        if (done) break;
    }
    buf[n] = 0;
    return n;
}

/* ---------------------------------------------------------------- main */

static void check_seeded_grants(void)
{
    /* Where frame 0 is now (we placed it in our RAM): GNTTABOP_setup_table says. */
    uint64_t frame = 0;
    struct gnttab_setup_table st = { .dom = DOMID_SELF, .nr_frames = 1, .frame_list = (uint64_t)(ulong)&frame };
    long rc = xen_hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, (ulong)&st, 1);
    if (rc || st.status) fail("setup_table failed: ", rc ? rc : st.status);
    struct grant_entry_v1 *g = (struct grant_entry_v1 *)(ulong)(frame << PAGE_SHIFT);
    uint64_t store_pfn = get_param(HVM_PARAM_STORE_PFN), cons_pfn = get_param(HVM_PARAM_CONSOLE_PFN);
    /* The type bits: once xenstored and xenconsoled map them, GTF_reading/GTF_writing are set too. */
    int ok = (g[0].flags & 3) == GTF_permit_access && g[0].frame == cons_pfn && (g[1].flags & 3) == GTF_permit_access && g[1].frame == store_pfn;
    puts_("xs-test: grant 0 -> d");
    putdec(g[0].domid);
    puts_(", grant 1 -> d");
    putdec(g[1].domid);
    puts_(ok ? ": seeded entries kept\n" : ": seeded entries LOST\n");
}

int main(void)
{
    puts_("xs-test: start\n");
    uint64_t store_pfn = get_param(HVM_PARAM_STORE_PFN);
    xs_port = (evtchn_port_t)get_param(HVM_PARAM_STORE_EVTCHN);
    uint64_t cons_pfn = get_param(HVM_PARAM_CONSOLE_PFN);
    cons_port = (evtchn_port_t)get_param(HVM_PARAM_CONSOLE_EVTCHN);
    puts_("xs-test: store pfn ");
    puthex(store_pfn);
    puts_(" port ");
    putdec(xs_port);
    puts_(", console pfn ");
    puthex(cons_pfn);
    puts_(" port ");
    putdec(cons_port);
    puts_("\n");
    struct xen_hvm_param p = { .domid = DOMID_SELF, .index = HVM_PARAM_STORE_PFN, .value = 0x1234 };
    say("set_param rc=", xen_hypercall(__HYPERVISOR_hvm_op, HVMOP_set_param, (ulong)&p, 0));

    events_init();
    long rc = grant_init();
    if (rc) fail("grant_init failed: ", rc);
    check_seeded_grants();
    xs = (struct xenstore_domain_interface *)(ulong)(store_pfn << PAGE_SHIFT);
    cons = (struct xencons_interface *)(ulong)(cons_pfn << PAGE_SHIFT);
    evtchn_set_handler(xs_port, on_event);
    evtchn_set_handler(cons_port, on_event);
    say("server features ", xs->server_features);

    ring_puts("ring: hello from the console ring\n");

    unsigned len = 0;
    long t = xs_request(XS_WRITE, "data/hello", "world", &len);
    show("write data/hello", t, len);
    t = xs_request(XS_READ, "data/hello", 0, &len);
    show("read data/hello", t, len);
    t = xs_request(XS_READ, "name", 0, &len);
    show("read name", t, len);
    t = xs_request(XS_READ, "/local/domain/0/name", 0, &len);
    show("read /local/domain/0/name", t, len);
    int seen = events_seen;
    t = xs_request(XS_WATCH, "data", "tok", &len);
    show("watch data", t, len);
    if (xs_wait_event(seen) == 0) { puts_("xs-test: watch event "); puts_(event); puts_("\n"); }
    seen = events_seen;
    t = xs_request(XS_WRITE, "data/w", "1", &len);
    show("write data/w", t, len);
    if (xs_wait_event(seen) == 0) { puts_("xs-test: watch event "); puts_(event); puts_("\n"); }
    /* A figure for bench/RESULTS.md: back-to-back READs over the ring (rdtime is 10 MHz). */
    ulong t0 = rdtime();
    for (int i = 0; i < 100; i++) xs_request(XS_READ, "data/hello", 0, &len);
    say("100 ring reads in us ", (long)((rdtime() - t0) / 10));
    puts_("xs-test: xenstore done\n");

    char line[80];
    ring_puts("ring: type a line\n");
    ring_getline(line, sizeof line);
    static char echo[sizeof line + 32];
    unsigned n = 0;
    for (const char *s = "ring: got line: "; *s; s++) echo[n++] = *s;
    for (unsigned i = 0; line[i]; i++) echo[n++] = line[i];
    echo[n++] = '\n';
    echo[n] = 0;
    ring_puts(echo);
    puts_("xs-test: got line: ");
    puts_(line);
    puts_("\n");

    for (;;) {
        ring_getline(line, sizeof line);
        if (str_eq(line, "quit", 5)) break;
        t = xs_request(XS_READ, "data/hello", 0, &len);
        show("again read data/hello", t, len);
    }
    puts_("xs-test: bye\n");
    guest_shutdown(SHUTDOWN_poweroff);
}
