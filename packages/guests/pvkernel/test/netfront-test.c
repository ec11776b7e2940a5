/*
 * netfront.c (with the IP stack on top) on the host against a fake
 * netback: the handshake keys, a stocked rx ring, frames in one slot, in
 * several (more_data) and after an extra-info slot, hostile responses (data
 * past the page, an error status, more responses than requests), and a
 * backend that dies and comes back as another domain.  Every buffer must
 * end up posted again, and the stack must keep answering.
 */
#include "fake-xen.h"
#include "../net.h"
#include "../netfront.h"

#define FRONT "device/vif/0"
#define MY_IP 0x0a000001u
static const uint8_t MY_MAC[6] = { 0x00, 0x16, 0x3e, 0x11, 0x22, 0x33 };
static const uint8_t PEER_MAC[6] = { 0x00, 0x16, 0x3e, 0x44, 0x55, 0x66 };
#define PEER_IP 0x0a000002u

/* ---- the fake netback ---- */
static char be_dir[64];
static int be_connected;
static netif_tx_back_ring_t btx;
static netif_rx_back_ring_t brx;
static int respawn_domid;

/* What the guest sent. */
static uint8_t sent[16][2048];
static size_t sent_len[16];
static int nsent;

/* A frame to deliver, and how. */
enum rx_mode { RX_ONE, RX_SPLIT, RX_EXTRA, RX_PAST_PAGE, RX_ERROR, RX_OVERFLOW };
static struct { uint8_t data[2048]; size_t len; enum rx_mode mode; } rxq[8];
static int nrxq;

static void backend_create(int domid)
{
    snprintf(be_dir, sizeof(be_dir), "/local/domain/%d/backend/vif/1/0", domid);
    char p[128], v[16];
    snprintf(p, sizeof(p), "%s/state", be_dir); xs_set(p, "2");
    snprintf(p, sizeof(p), "%s/feature-rx-copy", be_dir); xs_set(p, "1");
    xs_set(FRONT "/backend", be_dir);
    snprintf(v, sizeof(v), "%d", domid);
    xs_set(FRONT "/backend-id", v);
    be_connected = 0;
}

static void backend_die(void)
{
    xs_rm_dir(be_dir);
    be_connected = 0;
    watch_fired = 1;
}

static void *page_of(grant_ref_t g)
{
    if (g >= GREFS || !grant_page_of[g]) { printf("netback: bad gref %u\n", g); exit(2); }
    return grant_page_of[g];
}

/* Take the next rx request: its id and page. */
static struct netif_rx_request take_rx(void)
{
    struct netif_rx_request r;
    if (!RING_HAS_UNCONSUMED_REQUESTS(&brx)) { printf("netback: rx ring empty\n"); exit(2); }
    RING_COPY_REQUEST(&brx, brx.req_cons, &r);
    brx.req_cons++;
    if (grant_ro[r.gref]) { printf("netback: rx buffer granted read-only\n"); exit(2); }
    return r;
}

static void put_rx(uint16_t id, uint16_t offset, uint16_t flags, int16_t status)
{
    struct netif_rx_response *rsp = RING_GET_RESPONSE(&brx, brx.rsp_prod_pvt++);
    rsp->id = id;
    rsp->offset = offset;
    rsp->flags = flags;
    rsp->status = status;
}

static void deliver(int k)
{
    struct netif_rx_request a = take_rx();
    uint8_t *pa = page_of(a.gref);
    size_t len = rxq[k].len;
    switch (rxq[k].mode) {
    case RX_ONE:
        memcpy(pa + 16, rxq[k].data, len);
        put_rx(a.id, 16, NETRXF_data_validated, (int16_t)len);
        break;
    case RX_SPLIT: {   /* first 40 bytes in one slot, the rest in the next */
        struct netif_rx_request b = take_rx();
        memcpy(pa, rxq[k].data, 40);
        memcpy((uint8_t *)page_of(b.gref) + 100, rxq[k].data + 40, len - 40);
        put_rx(a.id, 0, NETRXF_more_data, 40);
        put_rx(b.id, 100, 0, (int16_t)(len - 40));
        break;
    }
    case RX_EXTRA: {   /* data slot flagged extra_info, then a GSO extra-info slot */
        struct netif_rx_request b = take_rx();
        (void)b;
        memcpy(pa, rxq[k].data, len);
        put_rx(a.id, 0, NETRXF_extra_info, (int16_t)len);
        struct netif_extra_info *x = (void *)RING_GET_RESPONSE(&brx, brx.rsp_prod_pvt++);
        memset(x, 0, sizeof(*x));
        x->type = XEN_NETIF_EXTRA_TYPE_GSO;
        x->u.gso.size = 1448;
        x->u.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
        break;
    }
    case RX_PAST_PAGE:
        put_rx(a.id, 4000, 0, 200);
        break;
    case RX_ERROR:
        put_rx(a.id, 0, 0, NETIF_RSP_ERROR);
        break;
    case RX_OVERFLOW:
        put_rx(a.id, 0, 0, 60);
        break;
    }
}

static void backend_step(void)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/state", be_dir);
    if (!xs_get(p)) {
        if (respawn_domid) {   /* the supervisor's device move */
            backend_create(respawn_domid);
            respawn_domid = 0;
            xs_set(FRONT "/state", "1");
        }
        return;
    }
    long fstate = 0;
    xenbus_read_int(XBT_NIL, FRONT "/state", &fstate);
    if (be_connected && fstate == XenbusStateInitialising) {
        be_connected = 0;
        xs_set(p, "2");
        return;
    }
    if (!be_connected) {
        if (fstate != XenbusStateConnected) return;
        long tx, rx, copy = 0;
        xenbus_read_int(XBT_NIL, FRONT "/tx-ring-ref", &tx);
        xenbus_read_int(XBT_NIL, FRONT "/rx-ring-ref", &rx);
        xenbus_read_int(XBT_NIL, FRONT "/request-rx-copy", &copy);
        if (copy != 1) { printf("netback: no request-rx-copy\n"); exit(2); }
        BACK_RING_INIT(&btx, (netif_tx_sring_t *)page_of((grant_ref_t)tx), 4096);
        BACK_RING_INIT(&brx, (netif_rx_sring_t *)page_of((grant_ref_t)rx), 4096);
        xs_set(p, "4");
        be_connected = 1;
        return;
    }
    /* tx: copy each frame out, answer OKAY */
    int any = 0;
    while (RING_HAS_UNCONSUMED_REQUESTS(&btx)) {
        struct netif_tx_request r;
        RING_COPY_REQUEST(&btx, btx.req_cons, &r);
        btx.req_cons++;
        if (nsent < 16) {
            memcpy(sent[nsent], (uint8_t *)page_of(r.gref) + r.offset, r.size);
            sent_len[nsent] = r.size;
        }
        nsent++;
        struct netif_tx_response *rsp = RING_GET_RESPONSE(&btx, btx.rsp_prod_pvt++);
        rsp->id = r.id;
        rsp->status = NETIF_RSP_OKAY;
        any = 1;
    }
    int notify_tx, notify_rx;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&btx, notify_tx);
    /* rx: what the test queued */
    int overflow = 0;
    for (int k = 0; k < nrxq; k++) {
        deliver(k);
        overflow |= rxq[k].mode == RX_OVERFLOW;
        any = 1;
    }
    nrxq = 0;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&brx, notify_rx);
    if (overflow) brx.sring->rsp_prod += 300;   /* a lie */
    if (any && (notify_tx || notify_rx) && handler) handler(0, handler_arg);
}

/* ---- frames ---- */

static size_t arp_request(uint8_t *f)
{
    memset(f, 0xff, 6);
    memcpy(f + 6, PEER_MAC, 6);
    put_be16(f + 12, ETHERTYPE_ARP);
    uint8_t *a = f + 14;
    put_be16(a, 1); put_be16(a + 2, 0x0800); a[4] = 6; a[5] = 4; put_be16(a + 6, 1);
    memcpy(a + 8, PEER_MAC, 6); put_be32(a + 14, PEER_IP); memset(a + 18, 0, 6); put_be32(a + 24, MY_IP);
    return 42;
}

static size_t echo_request(uint8_t *f, uint16_t seq)
{
    memcpy(f, MY_MAC, 6);
    memcpy(f + 6, PEER_MAC, 6);
    put_be16(f + 12, ETHERTYPE_IPV4);
    uint8_t *h = f + 14, *e = h + 20;
    memset(h, 0, 20);
    h[0] = 0x45; put_be16(h + 2, 20 + 64); h[8] = 64; h[9] = 1;
    put_be32(h + 12, PEER_IP); put_be32(h + 16, MY_IP);
    put_be16(h + 10, inet_fold(inet_sum(h, 20, 0)));
    e[0] = 8; e[1] = 0; put_be16(e + 2, 0); put_be16(e + 4, 0x77); put_be16(e + 6, seq);
    for (int i = 8; i < 64; i++) e[i] = (uint8_t)i;
    put_be16(e + 2, inet_fold(inet_sum(e, 64, 0)));
    return 14 + 20 + 64;
}

static void queue(size_t (*build)(uint8_t *, uint16_t), uint16_t seq, enum rx_mode mode)
{
    rxq[nrxq].len = build(rxq[nrxq].data, seq);
    rxq[nrxq].mode = mode;
    nrxq++;
}
static size_t arp_build(uint8_t *f, uint16_t seq) { (void)seq; return arp_request(f); }

/* Let the backend run and the front poll until it is quiet. */
static void run(struct netfront *d)
{
    for (int i = 0; i < 5; i++) {
        backend_step();
        netfront_poll(d);
    }
}

static int rx_posted(void)
{
    return (int)(brx.sring->req_prod - brx.req_cons);
}

static int is_echo_reply(int i, uint16_t seq)
{
    const uint8_t *e = sent[i] + 14 + 20;
    return get_be16(sent[i] + 12) == ETHERTYPE_IPV4 && e[0] == 0 && get_be16(e + 6) == seq &&
           inet_fold(inet_sum(e, 64, 0)) == 0 && !memcmp(sent[i], PEER_MAC, 6);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    quiet_printk = getenv("VERBOSE") == NULL;
    wait_hook = backend_step;
    xs_set(FRONT "/state", "1");
    xs_set(FRONT "/mac", "00:16:3e:11:22:33");
    backend_create(2);
    CHECK(netfront_probe() == 1, "probe connects");
    struct netfront *d = netfront_get(0);
    net_set_ip(MY_IP, 0xffffff00u);
    CHECK(!strcmp(xs_get(FRONT "/request-rx-copy"), "1") && !strcmp(xs_get(FRONT "/feature-rx-notify"), "1") &&
          !strcmp(xs_get(FRONT "/feature-no-csum-offload"), "1") && xs_get(FRONT "/event-channel") &&
          !strcmp(xs_get(FRONT "/state"), "4"), "front keys");
    uint8_t mac[6];
    netfront_mac(d, mac);
    CHECK(!memcmp(mac, MY_MAC, 6), "mac from the frontend's mac node");
    run(d);
    CHECK(rx_posted() == NETFRONT_RX_BUFS, "rx ring stocked with %d buffers (%d)", NETFRONT_RX_BUFS, rx_posted());

    /* An ARP request in one slot: the reply goes out on tx. */
    queue(arp_build, 0, RX_ONE);
    run(d);
    CHECK(nsent == 1 && get_be16(sent[0] + 12) == ETHERTYPE_ARP && get_be16(sent[0] + 20) == 2 && sent_len[0] == 60,
          "ARP reply sent (%d)", nsent);
    /* Echo requests: in two slots, and after an extra-info slot. */
    queue(echo_request, 1, RX_SPLIT);
    queue(echo_request, 2, RX_EXTRA);
    run(d);
    CHECK(nsent == 3 && is_echo_reply(1, 1) && is_echo_reply(2, 2), "both echoes answered (%d)", nsent);
    CHECK(rx_posted() == NETFRONT_RX_BUFS, "all buffers posted again (%d)", rx_posted());

    /* Hostile: data past the page, an error status; dropped, buffers back, stack still answers. */
    struct netfront_stats st;
    queue(arp_build, 0, RX_PAST_PAGE);
    queue(arp_build, 0, RX_ERROR);
    queue(echo_request, 3, RX_ONE);
    run(d);
    netfront_get_stats(d, &st);
    CHECK(st.rx_errors == 2, "two bad responses counted (%lu)", (unsigned long)st.rx_errors);
    CHECK(nsent == 4 && is_echo_reply(3, 3), "and the good frame after them answered");
    CHECK(rx_posted() == NETFRONT_RX_BUFS, "buffers back (%d)", rx_posted());

    /* A backend producing more responses than requests: the front reconnects instead of reading garbage. */
    queue(arp_build, 0, RX_OVERFLOW);
    run(d);
    netfront_get_stats(d, &st);
    CHECK(st.reconnects == 1 && netfront_connected(d), "reconnected after a lying rsp_prod (%u)", st.reconnects);
    queue(echo_request, 4, RX_ONE);
    run(d);
    CHECK(nsent >= 5 && is_echo_reply(nsent - 1, 4), "answers on the new rings");

    /* The backend dies and comes back as another domain. */
    respawn_domid = 7;
    backend_die();
    run(d);
    netfront_get_stats(d, &st);
    CHECK(st.reconnects == 2 && !strcmp(netfront_backend(d), "/local/domain/7/backend/vif/1/0"), "moved to d7 (%u %s)",
          st.reconnects, netfront_backend(d));
    CHECK(rx_posted() == NETFRONT_RX_BUFS, "new rx ring stocked (%d)", rx_posted());
    queue(echo_request, 5, RX_ONE);
    run(d);
    CHECK(is_echo_reply(nsent - 1, 5), "answers through d7");

    /* xl network-detach: online 0; the front says Closed, lets go of every grant, and stays down. */
    libxl_detach(be_dir);
    run(d);
    CHECK(!strcmp(xs_get(FRONT "/state"), "6") && !netfront_connected(d) && grants_live == 0, "detached (%s, %d)",
          xs_get(FRONT "/state"), grants_live);
    CHECK(netfront_xmit(d, sent[0], 60) == -XEN_ENODEV, "no more tx");
    return report("netfront");
}
