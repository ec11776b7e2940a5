/*
 * ring.h, blkif.h and netif.h on the host: layouts, ring sizes, and the
 * producer/consumer algorithms driven from both ends (a front and a back
 * sharing one page), including notification hold-off across index
 * wrap-around and the overflow checks against a lying peer.
 */
#include <stdalign.h>
#include "host-stubs.h"
#include "../blkif.h"
#include "../netif.h"

static alignas(4096) uint8_t page[4096];

static void test_layout(void)
{
    blkif_sring_t *s = (blkif_sring_t *)page;
    CHECK((uint8_t *)&s->req_prod - page == 0, "req_prod @0");
    CHECK((uint8_t *)&s->req_event - page == 4, "req_event @4");
    CHECK((uint8_t *)&s->rsp_prod - page == 8, "rsp_prod @8");
    CHECK((uint8_t *)&s->rsp_event - page == 12, "rsp_event @12");
    CHECK((uint8_t *)&s->pvt - page == 16, "pvt @16");
    CHECK((uint8_t *)&s->ring[0] - page == 64, "entries @64");
    CHECK((uint8_t *)&s->ring[1] - page == 64 + 112, "blkif entry 112 bytes");
    CHECK(BLK_RING_SIZE == 32 && NET_TX_RING_SIZE == 256 && NET_RX_RING_SIZE == 256, "ring sizes");
    CHECK(__RD32(36u) == 32 && __RD32(336u) == 256 && __RD32(504u) == 256 && __RD32(1u) == 1, "round down to 2^n");
}

static void test_init(void)
{
    memset(page, 0xaa, sizeof(page));
    blkif_sring_t *s = (blkif_sring_t *)page;
    blkif_front_ring_t f;
    SHARED_RING_INIT(s);
    FRONT_RING_INIT(&f, s, 4096);
    CHECK(s->req_prod == 0 && s->rsp_prod == 0 && s->req_event == 1 && s->rsp_event == 1, "indexes");
    int zero = 1;
    for (int i = 16; i < 64; i++) zero &= page[i] == 0;
    CHECK(zero, "pvt and pad zeroed");
    CHECK(RING_SIZE(&f) == 32 && RING_FREE_REQUESTS(&f) == 32 && !RING_FULL(&f), "empty front");
}

/* Push n requests from the front at index `start`, serve them from the back, check notifications. */
static void round_trip(RING_IDX start, unsigned n)
{
    memset(page, 0, sizeof(page));
    blkif_sring_t *s = (blkif_sring_t *)page;
    blkif_front_ring_t f;
    blkif_back_ring_t b;
    SHARED_RING_INIT(s);
    /* Start mid-way through the 32-bit index space to cross the wrap. */
    s->req_prod = s->rsp_prod = start;
    s->req_event = s->rsp_event = start + 1;
    FRONT_RING_ATTACH(&f, s, start, 4096);
    BACK_RING_ATTACH(&b, s, start, 4096);

    int notify, work;
    for (unsigned i = 0; i < n; i++) {
        struct blkif_request *r = RING_GET_REQUEST(&f, f.req_prod_pvt);
        memset(r, 0, sizeof(*r));
        r->operation = BLKIF_OP_READ;
        r->id = 1000 + i;
        r->sector_number = i * 8;
        f.req_prod_pvt++;
    }
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&f, notify);
    CHECK(notify, "the first push notifies (req_event = start + 1)");
    CHECK(RING_FREE_REQUESTS(&f) == 32 - n, "free after push: %u", RING_FREE_REQUESTS(&f));
    CHECK(RING_HAS_UNCONSUMED_REQUESTS(&b) == n, "back sees %u", (unsigned)RING_HAS_UNCONSUMED_REQUESTS(&b));

    /* A second push before the back asked again does not notify. */
    struct blkif_request *extra = RING_GET_REQUEST(&f, f.req_prod_pvt);
    memset(extra, 0, sizeof(*extra));
    extra->id = 9999;
    f.req_prod_pvt++;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&f, notify);
    CHECK(!notify, "hold-off: the back has not consumed yet");

    unsigned served = 0;
    do {
        while (RING_HAS_UNCONSUMED_REQUESTS(&b)) {
            struct blkif_request req;
            RING_COPY_REQUEST(&b, b.req_cons, &req);
            b.req_cons++;
            struct blkif_response *rsp = RING_GET_RESPONSE(&b, b.rsp_prod_pvt);
            rsp->id = req.id;
            rsp->operation = req.operation;
            rsp->status = BLKIF_RSP_OKAY;
            b.rsp_prod_pvt++;
            served++;
        }
        RING_FINAL_CHECK_FOR_REQUESTS(&b, work);
    } while (work);
    CHECK(served == n + 1, "served %u", served);
    CHECK(s->req_event == b.req_cons + 1, "back asked for the next request");
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&b, notify);
    CHECK(notify, "responses notify (rsp_event = start + 1)");

    unsigned got = 0;
    int ok = 1;
    do {
        RING_IDX rp = s->rsp_prod;
        CHECK(!RING_RESPONSE_PROD_OVERFLOW(&f, rp), "sane rsp_prod");
        for (; f.rsp_cons != rp; f.rsp_cons++, got++) {
            struct blkif_response rsp;
            RING_COPY_RESPONSE(&f, f.rsp_cons, &rsp);
            ok &= rsp.id == (got < n ? 1000 + got : 9999);
        }
        RING_FINAL_CHECK_FOR_RESPONSES(&f, work);
    } while (work);
    CHECK(ok && got == n + 1, "responses in order (%u)", got);
    CHECK(s->rsp_event == f.rsp_cons + 1, "front asked for the next response");
    CHECK(RING_FREE_REQUESTS(&f) == 32, "all slots free again");

    /* Now that the back asked, the next push notifies again. */
    f.req_prod_pvt++;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&f, notify);
    CHECK(notify, "after final check the next push notifies");
}

static void test_overflow_checks(void)
{
    memset(page, 0, sizeof(page));
    blkif_sring_t *s = (blkif_sring_t *)page;
    blkif_front_ring_t f;
    blkif_back_ring_t b;
    SHARED_RING_INIT(s);
    FRONT_RING_INIT(&f, s, 4096);
    BACK_RING_INIT(&b, s, 4096);
    CHECK(RING_RESPONSE_PROD_OVERFLOW(&f, 33), "33 responses from a 32-slot ring is a lie");
    CHECK(!RING_RESPONSE_PROD_OVERFLOW(&f, 32), "32 is possible");
    CHECK(RING_REQUEST_PROD_OVERFLOW(&b, 33), "33 requests is a lie");
    s->req_prod = 1000;   /* a front claiming far too many */
    CHECK(RING_HAS_UNCONSUMED_REQUESTS(&b) == 32, "the back never sees more than the ring holds");
}

static void test_net_rings(void)
{
    memset(page, 0, sizeof(page));
    netif_rx_sring_t *s = (netif_rx_sring_t *)page;
    netif_rx_front_ring_t f;
    SHARED_RING_INIT(s);
    FRONT_RING_INIT(&f, s, 4096);
    CHECK(RING_SIZE(&f) == 256, "rx ring 256");
    struct netif_rx_request *r = RING_GET_REQUEST(&f, 255);
    CHECK((uint8_t *)r - page == 64 + 255 * 8, "rx slot 255 at %ld", (long)((uint8_t *)r - page));
    r = RING_GET_REQUEST(&f, 256);
    CHECK((uint8_t *)r - page == 64, "index 256 wraps to slot 0");
    netif_tx_sring_t *t = (netif_tx_sring_t *)page;
    CHECK((uint8_t *)&t->ring[1] - page == 64 + 12, "tx entry 12 bytes");
}

int main(void)
{
    test_layout();
    test_init();
    round_trip(0, 5);
    round_trip(0xfffffffeu, 20);   /* crosses 2^32 */
    round_trip(0x7ffffff0u, 31);
    test_overflow_checks();
    test_net_rings();
    return report("ring");
}
