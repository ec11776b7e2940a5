/*
 * blkfront.c on the host against a fake blkback: an in-memory xenstore,
 * grant table and disk, and a backend that serves the ring whenever the
 * front sleeps (kernel_wait).  Deterministic versions of what the
 * end-to-end tests can only hit by timing: a backend that dies with
 * requests in flight (responses lost) and a new one named by `backend`;
 * responses out of order; a bogus response id; a backend claiming more
 * responses than requests; error statuses.
 */
#include <stdalign.h>
#include "fake-xen.h"
#include "../blkfront.h"
#include "../pattern.h"

/* ---- the fake backend ---- */
#define DISK_SECTORS 4096
static uint8_t disk[DISK_SECTORS * 512];
static char be_dir[64];
static int be_domid = 10, be_connected;
static blkif_back_ring_t back;
static struct {
    int persistent, indirect;
    int serve_limit;        /* take at most this many requests per step (-1: all) */
    int die_after;          /* after taking this many requests in total, die without answering them (-1: never) */
    int reverse;            /* answer each step's requests in reverse order */
    int bogus_id_once;      /* put a response with an unknown id first */
    int overflow_once;      /* claim far more responses than there are */
    int16_t status;         /* what to answer */
    int taken;
    int respawn_domid;      /* after dying, come back as this domain (the supervisor's device move) */
} be;

static void backend_create(int domid)
{
    be_domid = domid;
    snprintf(be_dir, sizeof(be_dir), "/local/domain/%d/backend/vbd/1/51712", domid);
    char p[128];
    snprintf(p, sizeof(p), "%s/state", be_dir); xs_set(p, "2");
    snprintf(p, sizeof(p), "%s/feature-flush-cache", be_dir); xs_set(p, "1");
    snprintf(p, sizeof(p), "%s/feature-persistent", be_dir); xs_set(p, be.persistent ? "1" : "0");
    snprintf(p, sizeof(p), "%s/feature-max-indirect-segments", be_dir); xs_set(p, be.indirect ? "256" : "0");
    xs_set("device/vbd/51712/backend", be_dir);
    char id[8];
    snprintf(id, sizeof(id), "%d", domid);
    xs_set("device/vbd/51712/backend-id", id);
    be_connected = 0;
}

static void backend_die(void)
{
    xs_rm_dir(be_dir);
    be_connected = 0;
    be.die_after = -1;
    watch_fired = 1;
}

static void *seg_page(grant_ref_t g, int write_access)
{
    if (g >= GREFS || !grant_page_of[g]) { printf("backend: bad gref %u\n", g); exit(2); }
    /* A persistent grant is mapped once for any later use: writable (xenbox's blkback, like Linux's, maps it so). */
    if (be.persistent) write_access = 1;
    if (write_access && grant_ro[g]) { printf("backend: write to a read-only grant %u\n", g); exit(2); }
    return grant_page_of[g];
}

static int16_t do_rw(int op, uint64_t sector, const struct blkif_request_segment *seg, unsigned nseg)
{
    for (unsigned i = 0; i < nseg; i++) {
        if (seg[i].last_sect > 7 || seg[i].first_sect > seg[i].last_sect) return BLKIF_RSP_ERROR;
        uint8_t *page = seg_page(seg[i].gref, op == BLKIF_OP_READ);
        unsigned n = seg[i].last_sect - seg[i].first_sect + 1;
        if (sector + n > DISK_SECTORS) return BLKIF_RSP_ERROR;
        if (op == BLKIF_OP_READ) memcpy(page + seg[i].first_sect * 512, disk + sector * 512, n * 512);
        else memcpy(disk + sector * 512, page + seg[i].first_sect * 512, n * 512);
        sector += n;
    }
    return BLKIF_RSP_OKAY;
}

static void backend_step(void)
{
    char p[160], v[32];
    snprintf(p, sizeof(p), "%s/state", be_dir);
    if (!xs_get(p)) {   /* dead: maybe restarted as a new domain, with the front reset to Initialising */
        if (be.respawn_domid) {
            backend_create(be.respawn_domid);
            be.respawn_domid = 0;
            xs_set("device/vbd/51712/state", "1");
        }
        return;
    }
    long fstate = 0;
    xenbus_read_int(XBT_NIL, "device/vbd/51712/state", &fstate);
    if (be_connected && fstate == XenbusStateInitialising) {   /* the front starts over: so do we (as blkback) */
        be_connected = 0;
        xs_set(p, "2");
        return;
    }
    if (!be_connected) {
        if (fstate != XenbusStateInitialised) return;
        long ref;
        xenbus_read_int(XBT_NIL, "device/vbd/51712/ring-ref", &ref);
        blkif_sring_t *s = grant_page_of[ref];
        if (!s) { printf("backend: ring-ref %ld not granted\n", ref); exit(2); }
        BACK_RING_INIT(&back, s, 4096);
        snprintf(p, sizeof(p), "%s/sectors", be_dir); snprintf(v, sizeof(v), "%d", DISK_SECTORS); xs_set(p, v);
        snprintf(p, sizeof(p), "%s/sector-size", be_dir); xs_set(p, "512");
        snprintf(p, sizeof(p), "%s/info", be_dir); xs_set(p, "0");
        snprintf(p, sizeof(p), "%s/state", be_dir); xs_set(p, "4");
        be_connected = 1;
        return;
    }
    struct blkif_request reqs[64];
    int n = 0;
    while (RING_HAS_UNCONSUMED_REQUESTS(&back) && (be.serve_limit < 0 || n < be.serve_limit)) {
        RING_COPY_REQUEST(&back, back.req_cons, &reqs[n]);
        back.req_cons++;
        n++;
        if (be.die_after >= 0 && ++be.taken >= be.die_after) { backend_die(); return; }
    }
    for (int k = 0; k < n; k++) {
        struct blkif_request *rq = &reqs[be.reverse ? n - 1 - k : k];
        int16_t st = be.status;
        if (st == BLKIF_RSP_OKAY) {
            if (rq->operation == BLKIF_OP_READ || rq->operation == BLKIF_OP_WRITE) {
                st = do_rw(rq->operation, rq->sector_number, rq->seg, rq->nr_segments);
            } else if (rq->operation == BLKIF_OP_INDIRECT) {
                struct blkif_request_indirect *ir = (struct blkif_request_indirect *)rq;
                const struct blkif_request_segment *segs = seg_page(ir->indirect_grefs[0], 0);
                st = do_rw(ir->indirect_op, ir->sector_number, segs, ir->nr_segments);
            }
        }
        struct blkif_response *r = RING_GET_RESPONSE(&back, back.rsp_prod_pvt++);
        r->id = rq->id;
        if (k == 0 && be.bogus_id_once) r->id = 77777;   /* answers nothing we asked */
        r->operation = rq->operation;
        r->status = st;
    }
    int notify;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, notify);
    if (be.bogus_id_once && n) {   /* ...and then goes away: only a re-issue completes that request */
        be.bogus_id_once = 0;
        backend_die();
    }
    if (be.overflow_once) {
        be.overflow_once = 0;
        back.sring->rsp_prod += 100;   /* a lie */
    }
    if (notify && handler) handler(0, handler_arg);
}


/* ---- the checks ---- */
static uint8_t buf[1024 * 512], back_buf[1024 * 512];

static void reset_backend(int persistent, int indirect)
{
    memset(&be, 0, sizeof(be));
    be.persistent = persistent;
    be.indirect = indirect;
    be.serve_limit = -1;
    be.die_after = -1;
    be.status = BLKIF_RSP_OKAY;
}

static void test_round_trip(struct blkfront *d, const char *what)
{
    pattern_fill(9, 100, buf, 700);
    CHECK(blk_write(d, 100, buf, 700) == 0, "%s: write", what);
    CHECK(!memcmp(disk + 100 * 512, buf, 700 * 512), "%s: on the disk", what);
    CHECK(blk_flush(d) == 0, "%s: flush", what);
    memset(back_buf, 0, sizeof(back_buf));
    CHECK(blk_read(d, 100, back_buf, 700) == 0 && !memcmp(back_buf, buf, 700 * 512), "%s: read back", what);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    quiet_printk = getenv("VERBOSE") == NULL;
    wait_hook = backend_step;
    reset_backend(1, 1);
    xs_set("device/vbd/51712/state", "1");
    backend_create(10);
    CHECK(blkfront_probe() == 1, "probe connects");
    struct blkfront *d = blkfront_find("xvda");
    CHECK(d != NULL, "xvda");
    struct blkfront_info in;
    blkfront_get_info(d, &in);
    CHECK(in.persistent && in.segs_per_request == 16 && in.sectors == DISK_SECTORS, "persistent grants, 16 segments");
    CHECK(!strcmp(xs_get("device/vbd/51712/state"), "4") && xs_get("device/vbd/51712/ring-ref") &&
          xs_get("device/vbd/51712/event-channel") && !xs_get("device/vbd/51712/protocol"), "front keys");
    test_round_trip(d, "persistent+indirect");

    /* Out of order, two at a time. */
    be.serve_limit = 2;
    be.reverse = 1;
    test_round_trip(d, "out of order");
    be.serve_limit = -1;
    be.reverse = 0;

    /*
     * A response with an id we never used completes nothing; its request is
     * issued again once the (dying) backend is replaced.
     */
    be.bogus_id_once = 1;
    be.respawn_domid = 13;
    pattern_fill(17, 0, buf, 8);
    CHECK(blk_write(d, 200, buf, 8) == 0 && !memcmp(disk + 200 * 512, buf, 8 * 512), "bogus id: re-issued and done");
    blkfront_get_info(d, &in);
    CHECK(in.reconnects == 1 && in.backend_id == 13 && in.reissued == 1, "one reconnect, one re-issue (%u %u %lu)",
          in.reconnects, in.backend_id, (unsigned long)in.reissued);

    /* Errors come back to the caller. */
    be.status = BLKIF_RSP_EOPNOTSUPP;
    CHECK(blk_write(d, 0, buf, 8) == -XEN_EOPNOTSUPP, "EOPNOTSUPP");
    be.status = BLKIF_RSP_ERROR;
    CHECK(blk_read(d, 0, buf, 8) == -XEN_EIO, "ERROR -> EIO");
    be.status = BLKIF_RSP_OKAY;
    CHECK(blk_read(d, 4090, buf, 16) == -XEN_EIO, "past the end: the backend's error");

    /*
     * The backend dies having taken requests it never answered; the toolstack
     * points us at a new one.  Every request is issued again and the data lands.
     */
    memset(disk, 0, sizeof(disk));
    struct blk_io ios[20];
    static uint8_t data[20][8 * 512];
    for (int i = 0; i < 20; i++) {
        pattern_fill(31, (uint64_t)i * 8, data[i], 8);
        ios[i] = (struct blk_io){ .op = BLKIF_OP_WRITE, .sector = (uint64_t)i * 8, .nsectors = 8, .buf = data[i] };
        CHECK(blk_submit(d, &ios[i]) == 0, "submit %d", i);
    }
    be.die_after = 5;
    be.serve_limit = 3;
    be.respawn_domid = 11;
    for (int i = 0; i < 20; i++) CHECK(blk_wait(d, &ios[i]) == 0, "request %d completes after the restart", i);
    be.serve_limit = -1;
    uint64_t reissued_before = in.reissued;
    blkfront_get_info(d, &in);
    CHECK(in.reconnects == 2 && in.backend_id == 11, "reconnected to d11 (%u, %u)", in.reconnects, in.backend_id);
    /* 5 taken: 3 answered in the first step, 2 lost; 15 never seen by the old backend */
    CHECK(in.reissued - reissued_before == 17, "re-issued %lu", (unsigned long)(in.reissued - reissued_before));
    pattern_fill(31, 0, buf, 160);
    CHECK(!memcmp(disk, buf, 160 * 512), "every write is on the disk");

    /* A backend claiming more responses than requests: the front reconnects rather than trusting it. */
    be.overflow_once = 1;
    pattern_fill(5, 0, buf, 64);
    int rc = blk_write(d, 0, buf, 64);
    blkfront_get_info(d, &in);
    CHECK(rc == 0 && in.reconnects == 3, "lying backend: reconnect (%d, %u)", rc, in.reconnects);
    CHECK(!memcmp(disk, buf, 64 * 512), "and the write still lands");

    /* Without persistent grants or indirect segments: 11-segment requests, grants ended after each. */
    reset_backend(0, 0);
    backend_die();
    be.respawn_domid = 12;
    CHECK(blk_read(d, 0, buf, 8) == 0, "reconnects to a plain backend");
    blkfront_get_info(d, &in);
    CHECK(!in.persistent && in.segs_per_request == 11, "no persistent, 11 segments");
    int live = grants_live;
    test_round_trip(d, "plain");
    CHECK(grants_live == live, "grants ended after use (%d vs %d)", grants_live, live);

    /* xl block-detach: the backend's online goes 0. The front says Closed and does not reconnect. */
    libxl_detach(be_dir);
    CHECK(blk_read(d, 0, buf, 8) == -XEN_ENODEV || !strcmp(xs_get("device/vbd/51712/state"), "6"), "detached");
    CHECK(!strcmp(xs_get("device/vbd/51712/state"), "6"), "front Closed (%s)", xs_get("device/vbd/51712/state"));
    CHECK(blk_read(d, 0, buf, 8) == -XEN_ENODEV, "no more I/O");
    blkfront_get_info(d, &in);
    CHECK(in.reconnects == 4 && grants_live == 0, "no reconnect, every grant ended (%u, %d)", in.reconnects, grants_live);
    return report("blkfront");
}
