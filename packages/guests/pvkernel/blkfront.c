/*
 * blkfront for xenbox's RISC-V PV kernel (blkfront.h).  The handshake is
 * Xen's (xen-protocols.md §3.4; Linux drivers/block/xen-blkfront.c
 * talk_to_blkback/blkfront_connect, mini-os blkfront.c): wait for the
 * backend's InitWait, read its features, grant a ring page, offer an
 * unbound event channel, write ring-ref/event-channel and go Initialised,
 * wait for Connected, read sectors/sector-size/info, go Connected.
 *
 * Data moves through the front's own bounce pages, one set per ring slot
 * (the slot is the request id), granted per request or, when the backend
 * offers feature-persistent, once for the life of the connection (Linux's
 * persistent grants).  The bounce pages are also the shadow: a write's
 * data stays in them until its response arrives, so a request can be
 * issued again on a new ring (Linux blkif_recover) after the backend
 * restarts.
 */
#include "kernel.h"
#include "klib.h"
#include "blkfront.h"
#include "xenfront.h"

#define CONNECT_TIMEOUT_NS   (60ull * 1000000000ull)
#define HEALTH_CHECK_NS      (1000000000ull)
#define WAIT_SLICE_NS        (200000000ull)
#define STALL_KICK_NS        (1000000000ull)
#define MAX_PATH 96
#define NO_GREF  0xffffffffu

struct blk_page {
    void *page;
    grant_ref_t gref;       /* NO_GREF when not granted */
};

/* A ring slot's request and everything needed to issue it again. */
struct blk_shadow {
    struct blk_io *io;      /* NULL: free */
    int on_ring;            /* issued on the current ring, no response yet */
    int issued;             /* issued on some ring (a backend may have seen it), no response yet */
    uint8_t op;
    uint16_t nseg;
    uint64_t sector;
    uint32_t nsectors;
    struct blk_page data[BLKFRONT_MAX_SEGS];
    struct blk_page indirect;   /* the segment array of an indirect request */
};

struct blkfront {
    uint32_t devid;
    char name[16];
    struct xenfront xf;         /* device/vbd/<devid>, its backend, the handshake */
    int connected, dead;
    /* the ring */
    void *ring_page;
    grant_ref_t ring_ref;
    evtchn_port_t port;
    int port_bound;
    blkif_front_ring_t ring;
    volatile int kicked;
    /* what the backend offers */
    uint64_t sectors;
    uint32_t sector_size, info;
    int feature_flush, feature_barrier, feature_discard, persistent;
    uint32_t max_indirect, segs;   /* segs: per request on this connection */
    /* in flight */
    struct blk_shadow shadow[BLK_RING_SIZE];
    int inflight;
    uint64_t last_health_ns;
    uint64_t last_progress_ns;  /* a response taken, or nothing in flight */
    uint32_t kicks;
    /* counters */
    uint32_t reconnects;
    uint64_t requests, reissued, errors;
};

static struct blkfront devs[BLKFRONT_MAX_DEVS];
static int ndevs;

static void blkfront_recover(struct blkfront *d);
static int reconnect_step(struct blkfront *d);

void blk_devid_name(uint32_t devid, char *buf, size_t len)
{
    if (!(devid & (1u << 28)) && devid >> 8 == 202) {
        unsigned disk = devid >> 4 & 15, part = devid & 15;
        if (part) snprintk(buf, len, "xvd%c%u", 'a' + disk, part);
        else snprintk(buf, len, "xvd%c", 'a' + disk);
    } else {
        snprintk(buf, len, "%u", (unsigned)devid);
    }
}

/* 64-bit node (sectors can exceed a long on 32-bit; here it is the decimal text). */
static uint64_t read_backend_u64(struct blkfront *d, const char *key)
{
    char path[MAX_PATH + 40], buf[32];
    unsigned long long v = 0;
    snprintk(path, sizeof(path), "%s/%s", d->xf.backend, key);
    if (xenbus_read(XBT_NIL, path, buf, sizeof(buf)) < 0 || parse_u64(buf, &v) < 0) return 0;
    return v;
}

static void blkfront_event(evtchn_port_t port, void *arg)
{
    (void)port;
    ((struct blkfront *)arg)->kicked = 1;
}

/* ---- grants of the bounce pages ---- */

static int grant_page(struct blkfront *d, struct blk_page *p, int readonly)
{
    if (p->gref != NO_GREF) return 0;
    int ref = gnttab_grant_access(d->xf.backend_id, p->page, readonly);
    if (ref < 0) return ref;
    p->gref = (grant_ref_t)ref;
    return 0;
}

/*
 * End a grant.  If the backend still has it mapped (-EBUSY), the page is
 * theirs to write until they let go: move our data to a fresh page and
 * abandon the old one, as Linux does with gnttab_end_foreign_access().
 */
static void ungrant_page(struct blk_page *p)
{
    if (p->gref == NO_GREF) return;
    if (gnttab_end_access(p->gref) < 0) {
        void *fresh = page_alloc();
        if (fresh) {
            memcpy(fresh, p->page, PAGE_SIZE);
            p->page = fresh;
        } else {
            printk("blkfront: a granted page is still mapped and no page is free to replace it\n");
        }
    }
    p->gref = NO_GREF;
}

static void shadow_ungrant(struct blk_shadow *s)
{
    for (unsigned i = 0; i < BLKFRONT_MAX_SEGS; i++) ungrant_page(&s->data[i]);
    ungrant_page(&s->indirect);
}

static int shadow_pages(struct blk_shadow *s, unsigned nseg, int indirect)
{
    for (unsigned i = 0; i < nseg; i++)
        if (!s->data[i].page && !(s->data[i].page = page_alloc())) return -XEN_ENOMEM;
    if (indirect && !s->indirect.page && !(s->indirect.page = page_alloc())) return -XEN_ENOMEM;
    return 0;
}

/* ---- issuing requests ---- */

static void fill_segments(struct blkfront *d, struct blk_shadow *s, struct blkif_request_segment *seg)
{
    (void)d;
    for (unsigned i = 0; i < s->nseg; i++) {
        uint32_t first = i * BLKIF_SECTORS_PER_PAGE;
        uint32_t left = s->nsectors - first;
        seg[i].gref = s->data[i].gref;
        seg[i].first_sect = 0;
        seg[i].last_sect = (uint8_t)((left >= BLKIF_SECTORS_PER_PAGE ? BLKIF_SECTORS_PER_PAGE : left) - 1);
    }
}

/* Put slot `id` on the ring (the caller pushes); 0 or -errno with nothing issued. */
static int issue(struct blkfront *d, unsigned id)
{
    struct blk_shadow *s = &d->shadow[id];
    int rw = s->op == BLKIF_OP_READ || s->op == BLKIF_OP_WRITE;
    int indirect = rw && s->nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST;
    int rc = 0;
    /* A request shadowed under a backend with more segments than this one takes. */
    if (indirect && d->max_indirect < s->nseg) return -XEN_EOPNOTSUPP;
    for (unsigned i = 0; rw && i < s->nseg && rc == 0; i++)
        rc = grant_page(d, &s->data[i], !d->persistent && s->op == BLKIF_OP_WRITE);
    /* Persistent grants are mapped once for any later use, so writable, indirect pages too (as Linux grants them). */
    if (rc == 0 && indirect) rc = grant_page(d, &s->indirect, !d->persistent);
    if (rc < 0) {
        if (!d->persistent) shadow_ungrant(s);
        return rc;
    }
    void *slot = RING_GET_REQUEST(&d->ring, d->ring.req_prod_pvt);
    if (s->op == BLKIF_OP_DISCARD) {
        struct blkif_request_discard *r = slot;
        memset(r, 0, sizeof(struct blkif_request));
        r->operation = BLKIF_OP_DISCARD;
        r->handle = (blkif_vdev_t)d->devid;
        r->id = id;
        r->sector_number = s->sector;
        r->nr_sectors = s->nsectors;
    } else if (indirect) {
        struct blkif_request_indirect *r = slot;
        memset(r, 0, sizeof(struct blkif_request));
        fill_segments(d, s, s->indirect.page);
        r->operation = BLKIF_OP_INDIRECT;
        r->indirect_op = s->op;
        r->nr_segments = s->nseg;
        r->id = id;
        r->sector_number = s->sector;
        r->handle = (blkif_vdev_t)d->devid;
        r->indirect_grefs[0] = s->indirect.gref;   /* 16 segments fit one page */
    } else {
        struct blkif_request *r = slot;
        memset(r, 0, sizeof(*r));
        r->operation = s->op;
        r->nr_segments = (uint8_t)(rw ? s->nseg : 0);
        r->handle = (blkif_vdev_t)d->devid;
        r->id = id;
        r->sector_number = s->sector;
        if (rw) fill_segments(d, s, r->seg);
    }
    d->ring.req_prod_pvt++;
    s->on_ring = 1;
    s->issued = 1;
    d->requests++;
    return 0;
}

static void push(struct blkfront *d)
{
    int notify;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&d->ring, notify);
    if (notify) evtchn_notify(d->port);
}

static void complete(struct blkfront *d, unsigned id, int16_t status)
{
    struct blk_shadow *s = &d->shadow[id];
    struct blk_io *io = s->io;
    if (!d->persistent) shadow_ungrant(s);
    int rc = status == BLKIF_RSP_OKAY ? 0 : status == BLKIF_RSP_EOPNOTSUPP ? -XEN_EOPNOTSUPP : -XEN_EIO;
    if (rc == 0 && s->op == BLKIF_OP_READ) {
        for (unsigned i = 0; i < s->nseg; i++) {
            uint32_t left = s->nsectors - i * BLKIF_SECTORS_PER_PAGE;
            uint32_t n = left >= BLKIF_SECTORS_PER_PAGE ? BLKIF_SECTORS_PER_PAGE : left;
            memcpy((uint8_t *)io->buf + (size_t)i * PAGE_SIZE, s->data[i].page, n * BLKIF_SECTOR_SIZE);
        }
    }
    if (rc) d->errors++;
    s->io = NULL;
    s->on_ring = 0;
    s->issued = 0;
    d->inflight--;
    io->status = rc;
    io->done = 1;
    if (io->cb) io->cb(io);
}

/* ---- responses ---- */

static int take_responses(struct blkfront *d)
{
    int got = 0, more;
    do {
        RING_IDX rp = d->ring.sring->rsp_prod;
        xen_rmb();   /* the responses before the index that published them */
        if (RING_RESPONSE_PROD_OVERFLOW(&d->ring, rp)) {
            printk("blkfront %s: backend claims %u responses for %u requests; reconnecting\n", d->name,
                   (unsigned)(rp - d->ring.rsp_cons), (unsigned)(d->ring.req_prod_pvt - d->ring.rsp_cons));
            d->connected = 0;
            return got;
        }
        for (RING_IDX i = d->ring.rsp_cons; i != rp; i++) {
            struct blkif_response rsp;
            RING_COPY_RESPONSE(&d->ring, i, &rsp);
            d->ring.rsp_cons = i + 1;
            if (rsp.id >= BLK_RING_SIZE || !d->shadow[rsp.id].on_ring) {
                printk("blkfront %s: response for unknown id %lu ignored\n", d->name, (unsigned long)rsp.id);
                continue;
            }
            complete(d, (unsigned)rsp.id, rsp.status);
            d->last_progress_ns = now_ns();
            got = 1;
        }
        RING_FINAL_CHECK_FOR_RESPONSES(&d->ring, more);
    } while (more);
    return got;
}

int blk_poll(struct blkfront *d)
{
    int got = 0;
    if (d->dead) return 0;
    if (d->connected) {
        d->kicked = 0;
        got = take_responses(d);
    }
    uint64_t t = now_ns();
    if (!d->inflight) d->last_progress_ns = t;
    /*
     * Requests out and no answer for a while, from a backend that still
     * says Connected: notify again.  A spurious event is harmless in Xen's
     * protocol and recovers a notification lost on the way.
     */
    if (d->connected && d->inflight && t - d->last_progress_ns >= STALL_KICK_NS) {
        if (!d->kicks++)
            printk("blkfront %s: no response for 1 s with %d in flight (req_prod %u req_event %u rsp_prod %u "
                   "rsp_event %u rsp_cons %u); notifying again\n", d->name, d->inflight,
                   (unsigned)d->ring.sring->req_prod, (unsigned)d->ring.sring->req_event,
                   (unsigned)d->ring.sring->rsp_prod, (unsigned)d->ring.sring->rsp_event, (unsigned)d->ring.rsp_cons);
        d->last_progress_ns = t;
        evtchn_notify(d->port);
    }
    if (d->xf.phase != XENFRONT_CONNECTED) return reconnect_step(d) | got;
    int check = xenfront_event(&d->xf);
    if (!check && d->inflight && t - d->last_health_ns >= HEALTH_CHECK_NS) check = 1;
    if (check || !d->connected) {
        d->last_health_ns = t;
        if (!d->connected || !xenfront_healthy(&d->xf)) {
            blkfront_recover(d);
            got = 1;
        }
    }
    return got;
}

static void wait_for_event(struct blkfront *d)
{
    if (d->kicked) return;
    /* Reconnecting: until the handshake's next step, not at all if one is due (a watch event wakes us sooner). */
    if (!d->connected) {
        uint64_t until = d->dead ? 0 : xenfront_sleep_until(&d->xf);
        if (until) kernel_wait(until);
        return;
    }
    int more;
    RING_FINAL_CHECK_FOR_RESPONSES(&d->ring, more);
    if (!more) kernel_wait(now_ns() + WAIT_SLICE_NS);
}

int blk_wait(struct blkfront *d, struct blk_io *io)
{
    while (!io->done) {
        if (d->dead) return -XEN_ENODEV;
        if (!blk_poll(d) && !io->done) wait_for_event(d);
    }
    return io->status;
}

void blk_drain(struct blkfront *d)
{
    while (d->inflight && !d->dead)
        if (!blk_poll(d) && d->inflight) wait_for_event(d);
}

int blk_inflight(struct blkfront *d)
{
    return d->inflight;
}

uint32_t blk_max_sectors(struct blkfront *d)
{
    return (d->segs ? d->segs : BLKIF_MAX_SEGMENTS_PER_REQUEST) * BLKIF_SECTORS_PER_PAGE;
}

static int free_slot(struct blkfront *d)
{
    for (unsigned i = 0; i < BLK_RING_SIZE; i++)
        if (!d->shadow[i].io) return (int)i;
    return -1;
}

int blk_submit(struct blkfront *d, struct blk_io *io)
{
    if (!d || d->dead) return -XEN_ENODEV;
    int rw = io->op == BLKIF_OP_READ || io->op == BLKIF_OP_WRITE;
    if (rw && (io->nsectors == 0 || io->nsectors > blk_max_sectors(d))) return -XEN_E2BIG;
    if (!rw && io->op != BLKIF_OP_FLUSH_DISKCACHE && io->op != BLKIF_OP_DISCARD) return -XEN_EINVAL;
    if (io->op == BLKIF_OP_DISCARD && !d->feature_discard) return -XEN_EOPNOTSUPP;
    int id;
    while ((id = free_slot(d)) < 0) {
        if (!blk_poll(d)) wait_for_event(d);
        if (d->dead) return -XEN_ENODEV;
    }
    struct blk_shadow *s = &d->shadow[id];
    unsigned nseg = rw ? (io->nsectors + BLKIF_SECTORS_PER_PAGE - 1) / BLKIF_SECTORS_PER_PAGE : 0;
    int rc = shadow_pages(s, nseg, nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST);
    if (rc < 0) return rc;
    s->op = io->op;
    s->nseg = (uint16_t)nseg;
    s->sector = io->sector;
    s->nsectors = io->nsectors;
    if (io->op == BLKIF_OP_WRITE)
        for (unsigned i = 0; i < nseg; i++) {
            uint32_t left = io->nsectors - i * BLKIF_SECTORS_PER_PAGE;
            uint32_t n = left >= BLKIF_SECTORS_PER_PAGE ? BLKIF_SECTORS_PER_PAGE : left;
            memcpy(s->data[i].page, (const uint8_t *)io->buf + (size_t)i * PAGE_SIZE, n * BLKIF_SECTOR_SIZE);
        }
    io->done = 0;
    io->status = 0;
    if (!d->inflight) d->last_progress_ns = now_ns();   /* the stall clock starts with the first request out */
    s->io = io;
    s->on_ring = 0;
    s->issued = 0;
    d->inflight++;
    /* While disconnected the request waits in its shadow; blkfront_recover issues it. */
    while (d->connected && !d->dead) {
        if ((rc = issue(d, (unsigned)id)) == 0) {
            push(d);
            break;
        }
        /* Out of grant references: they come back as requests complete. */
        if (rc == -XEN_ENOSPC && d->inflight > 1) {
            if (!blk_poll(d)) wait_for_event(d);
            continue;
        }
        s->io = NULL;
        d->inflight--;
        return rc;
    }
    return 0;
}

/* ---- synchronous I/O ---- */

static int blk_rw(struct blkfront *d, uint8_t op, uint64_t sector, void *buf, uint32_t nsectors)
{
    static struct blk_io ios[BLK_RING_SIZE];
    static int busy;
    if (!d || d->dead) return -XEN_ENODEV;
    if (busy) return -XEN_EBUSY;   /* not re-entrant: one synchronous transfer at a time */
    busy = 1;
    uint32_t per = blk_max_sectors(d), next = 0;
    int rc = 0;
    memset(ios, 0, sizeof(ios));
    for (uint32_t done = 0; done < nsectors;) {
        struct blk_io *io = &ios[next];
        if (io->buf) {   /* this slot is still in use: wait for its (oldest) request */
            int r = blk_wait(d, io);
            if (r && !rc) rc = r;
        }
        uint32_t n = nsectors - done < per ? nsectors - done : per;
        *io = (struct blk_io){ .op = op, .sector = sector + done, .nsectors = n,
                               .buf = (uint8_t *)buf + (size_t)done * BLKIF_SECTOR_SIZE };
        int r = blk_submit(d, io);
        if (r < 0) { io->buf = NULL; if (!rc) rc = r; break; }
        done += n;
        next = (next + 1) % BLK_RING_SIZE;
    }
    for (unsigned i = 0; i < BLK_RING_SIZE; i++)
        if (ios[i].buf) {
            int r = blk_wait(d, &ios[i]);
            if (r && !rc) rc = r;
        }
    busy = 0;
    return rc;
}

int blk_read(struct blkfront *d, uint64_t sector, void *buf, uint32_t nsectors)
{
    return blk_rw(d, BLKIF_OP_READ, sector, buf, nsectors);
}

int blk_write(struct blkfront *d, uint64_t sector, const void *buf, uint32_t nsectors)
{
    return blk_rw(d, BLKIF_OP_WRITE, sector, (void *)buf, nsectors);
}

/* A disk without feature-flush-cache is write-through: nothing to flush (Linux does the same). */
int blk_flush(struct blkfront *d)
{
    if (!d || d->dead) return -XEN_ENODEV;
    if (!d->feature_flush) return 0;
    struct blk_io io = { .op = BLKIF_OP_FLUSH_DISKCACHE };
    int rc = blk_submit(d, &io);
    return rc < 0 ? rc : blk_wait(d, &io);
}

int blk_discard(struct blkfront *d, uint64_t sector, uint64_t nsectors)
{
    if (!d || d->dead) return -XEN_ENODEV;
    if (nsectors > 0xffffffffull) return -XEN_E2BIG;
    struct blk_io io = { .op = BLKIF_OP_DISCARD, .sector = sector, .nsectors = (uint32_t)nsectors };
    int rc = blk_submit(d, &io);
    return rc < 0 ? rc : blk_wait(d, &io);
}

/* ---- connection ---- */

/* Let go of the ring, the event channel and every grant; in-flight requests stay in their shadows. */
static void blkfront_teardown(struct blkfront *d)
{
    d->connected = 0;
    if (d->port_bound) {
        evtchn_unbind_handler(d->port);
        evtchn_close(d->port);
        d->port_bound = 0;
    }
    if (d->ring_page) {
        if (d->ring_ref != NO_GREF && gnttab_end_access(d->ring_ref) < 0)
            d->ring_page = NULL;   /* still mapped by the old backend: abandon it */
        else
            page_free(d->ring_page);
        d->ring_page = NULL;
        d->ring_ref = NO_GREF;
    }
    for (unsigned i = 0; i < BLK_RING_SIZE; i++) {
        shadow_ungrant(&d->shadow[i]);
        d->shadow[i].on_ring = 0;
    }
}

static int write_front_nodes(struct blkfront *d)
{
    for (;;) {
        xenbus_transaction_t t;
        int retry = 0, rc = xenbus_transaction_start(&t);
        if (rc < 0) return rc;
        if ((rc = xenbus_printf(t, d->xf.node, "ring-ref", "%u", (unsigned)d->ring_ref)) < 0 ||
            (rc = xenbus_printf(t, d->xf.node, "event-channel", "%u", (unsigned)d->port)) < 0 ||
            (rc = xenbus_printf(t, d->xf.node, "feature-persistent", "%u", d->persistent ? 1u : 0u)) < 0) {
            xenbus_transaction_end(t, 1, &retry);
            return rc;
        }
        rc = xenbus_transaction_end(t, 0, &retry);
        if (!retry) return rc;
    }
}

static void read_features(struct blkfront *d)
{
    d->feature_flush = xenfront_backend_int(&d->xf, "feature-flush-cache", 0) == 1;
    d->feature_barrier = xenfront_backend_int(&d->xf, "feature-barrier", 0) == 1;
    d->feature_discard = xenfront_backend_int(&d->xf, "feature-discard", 0) == 1;
    d->persistent = xenfront_backend_int(&d->xf, "feature-persistent", 0) == 1;
    long v = xenfront_backend_int(&d->xf, "feature-max-indirect-segments", 0);
    d->max_indirect = v > 0 ? (uint32_t)v : 0;
    d->segs = d->max_indirect > BLKIF_MAX_SEGMENTS_PER_REQUEST
        ? (d->max_indirect < BLKFRONT_MAX_SEGS ? d->max_indirect : BLKFRONT_MAX_SEGS)
        : BLKIF_MAX_SEGMENTS_PER_REQUEST;
}

/* The backend is in InitWait (xenfront_ops.setup): read its features, grant a ring page, offer a channel, write our keys. */
static int setup_ring(void *arg)
{
    struct blkfront *d = arg;
    read_features(d);
    if (!(d->ring_page = page_alloc())) return -XEN_ENOMEM;
    blkif_sring_t *sring = d->ring_page;
    SHARED_RING_INIT(sring);
    FRONT_RING_INIT(&d->ring, sring, PAGE_SIZE);
    int ref = gnttab_grant_access(d->xf.backend_id, d->ring_page, 0);
    if (ref < 0) return ref;
    d->ring_ref = (grant_ref_t)ref;
    int rc = evtchn_alloc_unbound(d->xf.backend_id, &d->port);
    if (rc < 0) return rc;
    d->port_bound = 1;
    d->kicked = 0;
    evtchn_bind_handler(d->port, blkfront_event, d);
    return write_front_nodes(d);
}

/* The backend is Connected (xenfront_ops.connected): what it says about the disk. */
static int backend_connected(void *arg)
{
    struct blkfront *d = arg;
    d->sectors = read_backend_u64(d, "sectors");
    d->sector_size = (uint32_t)xenfront_backend_int(&d->xf, "sector-size", 512);
    d->info = (uint32_t)xenfront_backend_int(&d->xf, "info", 0);
    d->connected = 1;
    d->last_health_ns = d->last_progress_ns = now_ns();
    return 0;
}

static void teardown(void *arg)
{
    blkfront_teardown(arg);
}

static const struct xenfront_ops blkfront_ops = {
    .setup = setup_ring,
    .teardown = teardown,
    .connected = backend_connected,
    .state_after_setup = XenbusStateInitialised,
};

static void fail_all(struct blkfront *d, int16_t status)
{
    for (unsigned i = 0; i < BLK_RING_SIZE; i++)
        if (d->shadow[i].io) {
            d->shadow[i].on_ring = 1;
            complete(d, i, status);
        }
}

/* The toolstack took the device away (the ring is already torn down): say Closed, fail what is left. */
static void detached(struct blkfront *d)
{
    printk("blkfront %s: detached by the toolstack; %d request(s) failed\n", d->name, d->inflight);
    xenfront_unwatch(&d->xf);
    xenbus_switch_state(d->xf.node, XenbusStateClosed);
    d->dead = 1;
    fail_all(d, BLKIF_RSP_ERROR);
}

/*
 * The backend went away: take what it answered, let go of the old ring and
 * start the handshake again with whichever backend our `backend` node names
 * (blk_poll moves it along; requests submitted meanwhile wait in their
 * shadows).  If instead the toolstack took the device away (xl
 * block-detach), there is nothing to reconnect to: as Linux
 * blkfront_closing(), let go, say Closed, fail what is left.
 */
static void blkfront_recover(struct blkfront *d)
{
    if (d->connected && d->ring_page) take_responses(d);
    if (xenbus_device_detached(d->xf.node, d->xf.backend)) {
        blkfront_teardown(d);
        detached(d);
        return;
    }
    printk("blkfront %s: backend %s went away with %d request(s) in flight; reconnecting\n",
           d->name, d->xf.backend, d->inflight);
    xenfront_begin(&d->xf, &blkfront_ops, d, CONNECT_TIMEOUT_NS);
}

/*
 * Connected again: issue every request that had no response (Linux
 * blkif_recover).  Writes are idempotent, so repeating one the old backend
 * may have done is harmless; skipping one is what must not happen.
 */
static void reissue_all(struct blkfront *d)
{
    d->reconnects++;
    unsigned again = 0, queued = 0;
    for (unsigned i = 0; i < BLK_RING_SIZE; i++) {
        struct blk_shadow *s = &d->shadow[i];
        if (!s->io) continue;
        int before = s->issued;   /* on the old ring, unanswered; else submitted while we were away */
        if (issue(d, i) == 0) {
            if (before) again++;
            else queued++;
            continue;
        }
        s->on_ring = 1;
        complete(d, i, BLKIF_RSP_ERROR);
    }
    d->reissued += again;
    if (again + queued) push(d);
    printk("blkfront %s: reconnected to %s (backend domain %u), %u request(s) issued again, %u queued meanwhile\n",
           d->name, d->xf.backend, (unsigned)d->xf.backend_id, again, queued);
}

/* One step of a reconnection under way; never blocks. */
static int reconnect_step(struct blkfront *d)
{
    int rc = xenfront_step(&d->xf, &blkfront_ops, d);
    if (rc == 1) {
        reissue_all(d);
        return 1;
    }
    if (rc == -XEN_ENODEV) {
        detached(d);
        return 1;
    }
    if (rc < 0) {
        printk("blkfront %s: reconnect failed (%d; backend %s in state %d); failing %d request(s)\n", d->name, rc,
               d->xf.backend, xenfront_backend_state(&d->xf), d->inflight);
        d->dead = 1;
        fail_all(d, BLKIF_RSP_ERROR);
        return 1;
    }
    return 0;
}

/* Set up devs[ndevs] for device/vbd/<name> and start its handshake (it is counted once connected). */
static int blkfront_begin_add(const char *name)
{
    unsigned long long devid;
    if (ndevs >= BLKFRONT_MAX_DEVS || parse_u64(name, &devid) < 0) return -XEN_EINVAL;
    struct blkfront *d = &devs[ndevs];
    memset(d, 0, sizeof(*d));
    d->devid = (uint32_t)devid;
    d->ring_ref = NO_GREF;
    for (unsigned i = 0; i < BLK_RING_SIZE; i++) {
        for (unsigned j = 0; j < BLKFRONT_MAX_SEGS; j++) d->shadow[i].data[j].gref = NO_GREF;
        d->shadow[i].indirect.gref = NO_GREF;
    }
    blk_devid_name(d->devid, d->name, sizeof(d->name));
    char node[XENFRONT_PATH], token[32];
    snprintk(node, sizeof(node), "device/vbd/%s", name);
    snprintk(token, sizeof(token), "blkfront-%u", (unsigned)d->devid);
    int rc = xenfront_init(&d->xf, node, token);
    if (rc < 0) {
        printk("blkfront %s: no backend node (%d)\n", d->name, rc);
        return rc;
    }
    xenfront_begin(&d->xf, &blkfront_ops, d, CONNECT_TIMEOUT_NS);
    return 0;
}

/* devs[ndevs]'s handshake ended: count it and say so, or let it go. */
static int blkfront_end_add(int rc)
{
    struct blkfront *d = &devs[ndevs];
    if (rc < 0) {
        xenfront_unwatch(&d->xf);
        printk("blkfront %s: cannot connect to %s (%d)\n", d->name, d->xf.backend, rc);
        return rc;
    }
    ndevs++;
    printk("blkfront %s: %lu sectors of 512 bytes (sector-size %u)%s%s, backend domain %u%s%s%s\n",
           d->name, (unsigned long)d->sectors, (unsigned)d->sector_size,
           d->info & VDISK_READONLY ? ", read-only" : "", d->info & VDISK_CDROM ? ", cdrom" : "",
           (unsigned)d->xf.backend_id, d->feature_flush ? ", flush" : "",
           d->persistent ? ", persistent grants" : "",
           d->segs > BLKIF_MAX_SEGMENTS_PER_REQUEST ? ", indirect" : "");
    return 0;
}

/* At boot: the disk is there before the workload runs (waiting for its backend). */
static int blkfront_add(const char *name)
{
    int rc = blkfront_begin_add(name);
    if (rc < 0) return rc;
    struct blkfront *d = &devs[ndevs];
    return blkfront_end_add(xenfront_connect(&d->xf, &blkfront_ops, d, CONNECT_TIMEOUT_NS));
}

int blkfront_probe(void)
{
    char list[256];
    int n = xenbus_ls(XBT_NIL, "device/vbd", list, sizeof(list));
    if (n <= 0) return 0;
    const char *p = list;
    for (int i = 0; i < n; i++) {
        blkfront_add(p);
        p += strlen(p) + 1;
    }
    return ndevs;
}

/*
 * Hotplug (`xl block-attach` while we run): a watch on device/vbd; a devid
 * we do not have whose frontend state is Initialising is a new disk, which
 * we connect as at boot (Linux: xenbus_probe_frontend's watch on "device").
 */
#define HOTPLUG_TOKEN "blkfront-hotplug"
static int hotplug_watching;

static int have_devid(unsigned long long devid)
{
    for (int i = 0; i < ndevs; i++)
        if (devs[i].devid == devid) return 1;
    return 0;
}

/* A disk attached while we run, still connecting (its slot is devs[ndevs]); -1 if none. */
static int hotplug_pending = -1;

void blkfront_hotplug_poll(void)
{
    /* One hotplugged disk at a time, its handshake stepped here: the rest of the kernel runs meanwhile. */
    if (hotplug_pending >= 0) {
        struct blkfront *d = &devs[ndevs];
        int rc = xenfront_step(&d->xf, &blkfront_ops, d);
        if (rc == 0) return;
        hotplug_pending = -1;
        blkfront_end_add(rc == 1 ? 0 : rc);
        return;   /* disks attached meanwhile left the watch pending: the next poll looks for them */
    }
    if (!hotplug_watching) {
        if (xenbus_watch("device/vbd", HOTPLUG_TOKEN) != 0) return;
        hotplug_watching = 1;
        (void)xenbus_watch_pending(HOTPLUG_TOKEN); /* the registration's own event */
        return;
    }
    if (!xenbus_watch_pending(HOTPLUG_TOKEN)) return;
    char list[256], path[MAX_PATH];
    int n = xenbus_ls(XBT_NIL, "device/vbd", list, sizeof(list));
    const char *p = list;
    for (int i = 0; i < n; i++, p += strlen(p) + 1) {
        unsigned long long devid;
        long state;
        if (parse_u64(p, &devid) < 0 || have_devid(devid)) continue;
        snprintk(path, sizeof(path), "device/vbd/%s/state", p);
        if (xenbus_read_int(XBT_NIL, path, &state) != 0 || state != XenbusStateInitialising) continue;
        printk("blkfront: new virtual disk %s\n", p);
        if (blkfront_begin_add(p) == 0) {
            hotplug_pending = ndevs;
            return;
        }
    }
}

int blkfront_count(void)
{
    return ndevs;
}

struct blkfront *blkfront_get(int index)
{
    return index >= 0 && index < ndevs ? &devs[index] : NULL;
}

struct blkfront *blkfront_find(const char *name)
{
    unsigned long long v;
    for (int i = 0; i < ndevs; i++)
        if (strcmp(devs[i].name, name) == 0) return &devs[i];
    if (parse_u64(name, &v) == 0) {
        for (int i = 0; i < ndevs; i++)
            if (devs[i].devid == v) return &devs[i];
        if (v < (unsigned long long)ndevs) return &devs[v];
    }
    return NULL;
}

void blkfront_get_info(struct blkfront *d, struct blkfront_info *info)
{
    memset(info, 0, sizeof(*info));
    memcpy(info->name, d->name, sizeof(info->name));
    info->devid = d->devid;
    info->sectors = d->sectors;
    info->sector_size = d->sector_size;
    info->info = d->info;
    info->feature_flush = d->feature_flush;
    info->feature_discard = d->feature_discard;
    info->persistent = d->persistent;
    info->max_indirect_segments = d->max_indirect;
    info->segs_per_request = d->segs;
    info->backend_id = d->xf.backend_id;
    info->backend = d->xf.backend;
    info->connected = d->connected;
    info->reconnects = d->reconnects;
    info->requests = d->requests;
    info->reissued = d->reissued;
    info->errors = d->errors;
}
