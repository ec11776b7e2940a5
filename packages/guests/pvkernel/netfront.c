/*
 * netfront for xenbox's RISC-V PV kernel (netfront.h).  The handshake is
 * Linux's drivers/net/xen-netfront.c (talk_to_netback, then Connected as
 * soon as the keys are written) and mini-os netfront.c: grant a tx and an
 * rx ring page, offer one event channel, write tx-ring-ref, rx-ring-ref,
 * event-channel, request-rx-copy=1, feature-rx-notify=1 and
 * feature-no-csum-offload=1 (we compute every checksum, so the backend
 * must not hand us frames with blank ones), go Connected, wait for the
 * backend's Connected.
 *
 * Rx buffers and tx pages are granted once per connection and reused.  A
 * response is matched to its buffer by ring slot, not by id (netback puts
 * each rx response in the slot of the request it consumed; an extra-info
 * slot has no id), as Linux netfront does.
 */
#include "kernel.h"
#include "klib.h"
#include "net.h"
#include "netfront.h"
#include "xenfront.h"

#define CONNECT_TIMEOUT_NS (60ull * 1000000000ull)
#define HEALTH_CHECK_NS    (5000000000ull)   /* watches come first; this is the safety net */
#define WAIT_SLICE_NS      (200000000ull)
#define STALL_KICK_NS      (1000000000ull)
#define MAX_PATH 96
#define NO_GREF 0xffffffffu

struct nf_page {
    void *page;
    grant_ref_t gref;
};

struct netfront {
    unsigned index;
    char name[8];
    struct xenfront xf;   /* device/vif/<devid>, its backend, the handshake */
    uint8_t mac[ETH_ALEN];
    int connected, dead;
    evtchn_port_t port;
    int port_bound;
    volatile int kicked;
    struct nf_page tx_ring_page, rx_ring_page;
    netif_tx_front_ring_t tx;
    netif_rx_front_ring_t rx;
    struct nf_page txbuf[NETFRONT_TX_BUFS], rxbuf[NETFRONT_RX_BUFS];
    uint8_t tx_busy[NETFRONT_TX_BUFS];
    uint8_t rx_posted[NETFRONT_RX_BUFS];
    uint16_t rx_slot_buf[NET_RX_RING_SIZE];   /* which buffer the request in each rx slot carries */
    uint64_t last_health_ns;
    uint64_t last_tx_progress_ns;   /* a tx response taken, or none outstanding */
    uint32_t kicks;
    struct netfront_stats st;
};

static struct netfront devs[NETFRONT_MAX_DEVS];
static int ndevs;
/* A frame spread over several rx slots (NETRXF_more_data) is put together here. */
static uint8_t rx_assembly[ETH_FRAME_MAX + 64];

static void netfront_recover(struct netfront *d);
static int reconnect_step(struct netfront *d);

static void netfront_event(evtchn_port_t port, void *arg)
{
    (void)port;
    ((struct netfront *)arg)->kicked = 1;
}

static void ungrant(struct nf_page *p, int free_page)
{
    if (p->gref != NO_GREF && gnttab_end_access(p->gref) < 0) {
        p->page = NULL;   /* still mapped by the backend: abandon the page rather than reuse it */
        free_page = 0;
    }
    p->gref = NO_GREF;
    if (free_page && p->page) {
        page_free(p->page);
        p->page = NULL;
    }
}

static int grant(struct netfront *d, struct nf_page *p, int readonly)
{
    if (!p->page && !(p->page = page_alloc())) return -XEN_ENOMEM;
    int ref = gnttab_grant_access(d->xf.backend_id, p->page, readonly);
    if (ref < 0) return ref;
    p->gref = (grant_ref_t)ref;
    return 0;
}

/* ---- rx ---- */

static void post_rx(struct netfront *d, unsigned buf)
{
    RING_IDX i = d->rx.req_prod_pvt;
    struct netif_rx_request *req = RING_GET_REQUEST(&d->rx, i);
    req->id = (uint16_t)buf;
    req->pad = 0;
    req->gref = d->rxbuf[buf].gref;
    d->rx_slot_buf[i & (NET_RX_RING_SIZE - 1)] = (uint16_t)buf;
    d->rx_posted[buf] = 1;
    d->rx.req_prod_pvt = i + 1;
}

static void push_rx(struct netfront *d)
{
    int notify;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&d->rx, notify);
    if (notify) evtchn_notify(d->port);
}

/* The response at rx index i, its buffer handed back to us (to be posted again). */
static unsigned rx_take(struct netfront *d, RING_IDX i, struct netif_rx_response *rsp)
{
    RING_COPY_RESPONSE(&d->rx, i, rsp);
    unsigned buf = d->rx_slot_buf[i & (NET_RX_RING_SIZE - 1)];
    d->rx_posted[buf] = 0;
    return buf;
}

/* Skip the extra-info slots after index i (each may announce another); the index after them, or rp if cut short. */
static RING_IDX skip_extras(struct netfront *d, RING_IDX i, RING_IDX rp, int release)
{
    int more = 1;
    while (more && i != rp) {
        struct netif_extra_info x;
        memcpy(&x, (const void *)RING_GET_RESPONSE(&d->rx, i), sizeof(x));
        if (release) d->rx_posted[d->rx_slot_buf[i & (NET_RX_RING_SIZE - 1)]] = 0;
        more = x.flags & XEN_NETIF_EXTRA_FLAG_MORE;
        i++;
    }
    return more ? rp + 1 : i;   /* rp + 1: incomplete */
}

/*
 * Consume one frame starting at rsp_cons: its first slot, any extra-info
 * slots (they follow the first), then the slots flagged more_data.
 * Returns 0 when the frame is not complete on the ring yet.
 */
static int rx_frame(struct netfront *d, RING_IDX rp)
{
    RING_IDX i = d->rx.rsp_cons, end = i;
    for (int first = 1;; first = 0) {
        if (end == rp) return 0;
        struct netif_rx_response r;
        RING_COPY_RESPONSE(&d->rx, end, &r);
        end++;
        if (first && (r.flags & NETRXF_extra_info) && (end = skip_extras(d, end, rp, 0)) == rp + 1) return 0;
        if (!(r.flags & NETRXF_more_data)) break;
    }
    size_t len = 0;
    int bad = 0;
    const uint8_t *data = NULL;
    for (RING_IDX k = i; k != end;) {
        struct netif_rx_response r;
        unsigned buf = rx_take(d, k, &r);
        k++;
        if (k - 1 == i && (r.flags & NETRXF_extra_info)) k = skip_extras(d, k, end, 1);
        if (r.status < 0 || r.offset + (uint32_t)r.status > PAGE_SIZE) { bad = 1; continue; }
        const uint8_t *p = (const uint8_t *)d->rxbuf[buf].page + r.offset;
        if (k == end && len == 0) { data = p; len = (size_t)r.status; break; }   /* one slot: no copy */
        if (len + (size_t)r.status > sizeof(rx_assembly)) { bad = 1; continue; }
        memcpy(rx_assembly + len, p, (size_t)r.status);
        data = rx_assembly;
        len += (size_t)r.status;
    }
    d->rx.rsp_cons = end;
    if (bad || len == 0) {
        d->st.rx_errors++;
    } else {
        d->st.rx_frames++;
        d->st.rx_bytes += len;
        /* The buffer is posted again only after this returns, so `data` stays ours meanwhile. */
        if (d->index == 0) net_input(data, len);
    }
    return 1;
}

static int rx_poll(struct netfront *d)
{
    int got = 0, more;
    do {
        RING_IDX rp = d->rx.sring->rsp_prod;
        xen_rmb();
        if (RING_RESPONSE_PROD_OVERFLOW(&d->rx, rp)) {
            printk("netfront %s: backend produced too many rx responses; reconnecting\n", d->name);
            d->connected = 0;
            return got;
        }
        int progress = 0;
        while (d->connected && rx_frame(d, rp)) progress = got = 1;
        /* Put every buffer that came back on the ring again. */
        int posted = 0;
        for (unsigned b = 0; b < NETFRONT_RX_BUFS; b++)
            if (!d->rx_posted[b] && d->rxbuf[b].gref != NO_GREF && !RING_FULL(&d->rx)) {
                post_rx(d, b);
                posted = 1;
            }
        if (posted) push_rx(d);
        if (!progress) break;   /* nothing, or a frame whose later slots are not there yet */
        RING_FINAL_CHECK_FOR_RESPONSES(&d->rx, more);
    } while (more && d->connected);
    return got;
}

/* ---- tx ---- */

static int tx_reap(struct netfront *d)
{
    int got = 0;
    RING_IDX rp = d->tx.sring->rsp_prod;
    xen_rmb();
    if (RING_RESPONSE_PROD_OVERFLOW(&d->tx, rp)) {
        printk("netfront %s: backend produced too many tx responses; reconnecting\n", d->name);
        d->connected = 0;
        return 0;
    }
    for (RING_IDX i = d->tx.rsp_cons; i != rp; i++) {
        struct netif_tx_response r;
        RING_COPY_RESPONSE(&d->tx, i, &r);
        if (r.status == NETIF_RSP_NULL) continue;   /* an extra-info slot (we send none) */
        if (r.id < NETFRONT_TX_BUFS && d->tx_busy[r.id]) {
            d->tx_busy[r.id] = 0;
            d->last_tx_progress_ns = now_ns();
            if (r.status != NETIF_RSP_OKAY) d->st.tx_errors++;
            got = 1;
        }
    }
    d->tx.rsp_cons = rp;
    return got;
}

static int tx_free_id(struct netfront *d)
{
    for (unsigned i = 0; i < NETFRONT_TX_BUFS; i++)
        if (!d->tx_busy[i]) return (int)i;
    return -1;
}

int netfront_xmit(struct netfront *d, const void *frame, size_t len)
{
    if (!d || d->dead) return -XEN_ENODEV;
    if (len > PAGE_SIZE || len == 0) return -XEN_E2BIG;
    if (!d->connected) { d->st.tx_errors++; return -XEN_EAGAIN; }   /* reconnecting: the frame is lost */
    uint64_t deadline = now_ns() + 1000000000ull;
    int id;
    /* Only tx completions are reaped here: delivering rx frames could re-enter the IP stack. */
    while ((id = tx_free_id(d)) < 0 || RING_FULL(&d->tx)) {
        if (tx_reap(d)) continue;
        if (!d->connected || now_ns() >= deadline) { d->st.tx_errors++; return -XEN_EAGAIN; }
        int more;
        RING_FINAL_CHECK_FOR_RESPONSES(&d->tx, more);
        if (!more) kernel_wait(now_ns() + 10000000ull);
    }
    memcpy(d->txbuf[id].page, frame, len);
    struct netif_tx_request *req = RING_GET_REQUEST(&d->tx, d->tx.req_prod_pvt);
    req->gref = d->txbuf[id].gref;
    req->offset = 0;
    req->flags = 0;          /* checksums complete, one slot, no extras */
    req->id = (uint16_t)id;
    req->size = (uint16_t)len;
    d->tx.req_prod_pvt++;
    int idle = 1;
    for (unsigned i = 0; i < NETFRONT_TX_BUFS && idle; i++) idle = !d->tx_busy[i];
    if (idle) d->last_tx_progress_ns = now_ns();   /* the stall clock starts with the first frame out */
    d->tx_busy[id] = 1;
    int notify;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&d->tx, notify);
    if (notify) evtchn_notify(d->port);
    d->st.tx_frames++;
    d->st.tx_bytes += len;
    return 0;
}

/* ---- health, poll, wait ---- */

int netfront_poll(struct netfront *d)
{
    int got = 0;
    if (!d || d->dead) return 0;
    if (d->connected) {
        d->kicked = 0;
        got |= tx_reap(d);
        got |= rx_poll(d);
    }
    /* Called from inside a xenbus request (xenbus_set_idle): the data path only. */
    if (xenbus_busy()) return got;
    uint64_t t = now_ns();
    /* Frames out and no tx response for a while: notify again (as blkfront does; spurious events are harmless). */
    int tx_out = 0;
    for (unsigned i = 0; i < NETFRONT_TX_BUFS && !tx_out; i++) tx_out = d->tx_busy[i];
    if (!tx_out) d->last_tx_progress_ns = t;
    else if (d->connected && t - d->last_tx_progress_ns >= STALL_KICK_NS) {
        if (!d->kicks++) printk("netfront %s: no tx response for 1 s; notifying again\n", d->name);
        d->last_tx_progress_ns = t;
        evtchn_notify(d->port);
    }
    if (d->xf.phase != XENFRONT_CONNECTED) return reconnect_step(d) | got;
    int check = xenfront_event(&d->xf);
    if (!check && t - d->last_health_ns >= HEALTH_CHECK_NS) check = 1;
    if (check || !d->connected) {
        d->last_health_ns = t;
        if (!d->connected || !xenfront_healthy(&d->xf)) {
            netfront_recover(d);
            got = 1;
        }
    }
    return got;
}

void netfront_wait(struct netfront *d, uint64_t deadline_ns)
{
    if (d && d->connected && !d->kicked) {
        int more_rx, more_tx;
        RING_FINAL_CHECK_FOR_RESPONSES(&d->rx, more_rx);
        RING_FINAL_CHECK_FOR_RESPONSES(&d->tx, more_tx);
        if (more_rx || more_tx) return;
    } else if (d && d->kicked) {
        return;
    }
    uint64_t cap = now_ns() + WAIT_SLICE_NS;
    /* Reconnecting: not past the handshake's next step, and not at all if one is due. */
    if (d && !d->connected && !d->dead) {
        uint64_t until = xenfront_sleep_until(&d->xf);
        if (!until) return;
        if (until < cap) cap = until;
    }
    kernel_wait(deadline_ns && deadline_ns < cap ? deadline_ns : cap);
}

/* ---- connection ---- */

static void netfront_teardown(struct netfront *d)
{
    d->connected = 0;
    if (d->port_bound) {
        evtchn_unbind_handler(d->port);
        evtchn_close(d->port);
        d->port_bound = 0;
    }
    ungrant(&d->tx_ring_page, 1);
    ungrant(&d->rx_ring_page, 1);
    for (unsigned i = 0; i < NETFRONT_TX_BUFS; i++) {
        ungrant(&d->txbuf[i], 0);
        d->tx_busy[i] = 0;
    }
    for (unsigned i = 0; i < NETFRONT_RX_BUFS; i++) {
        ungrant(&d->rxbuf[i], 0);
        d->rx_posted[i] = 0;
    }
}

static int write_front_nodes(struct netfront *d)
{
    for (;;) {
        xenbus_transaction_t t;
        int retry = 0, rc = xenbus_transaction_start(&t);
        if (rc < 0) return rc;
        if ((rc = xenbus_printf(t, d->xf.node, "tx-ring-ref", "%u", (unsigned)d->tx_ring_page.gref)) < 0 ||
            (rc = xenbus_printf(t, d->xf.node, "rx-ring-ref", "%u", (unsigned)d->rx_ring_page.gref)) < 0 ||
            (rc = xenbus_printf(t, d->xf.node, "event-channel", "%u", (unsigned)d->port)) < 0 ||
            (rc = xenbus_printf(t, d->xf.node, "request-rx-copy", "%u", 1u)) < 0 ||
            (rc = xenbus_printf(t, d->xf.node, "feature-rx-notify", "%u", 1u)) < 0 ||
            (rc = xenbus_printf(t, d->xf.node, "feature-no-csum-offload", "%u", 1u)) < 0 ||
            (rc = xenbus_printf(t, d->xf.node, "feature-sg", "%u", 0u)) < 0) {
            xenbus_transaction_end(t, 1, &retry);
            return rc;
        }
        rc = xenbus_transaction_end(t, 0, &retry);
        if (!retry) return rc;
    }
}

/* The backend is in InitWait (xenfront_ops.setup): grant both rings and the buffers, stock rx, offer a channel, write our keys. */
static int setup_rings(void *arg)
{
    struct netfront *d = arg;
    int rc;
    if ((rc = grant(d, &d->tx_ring_page, 0)) < 0 || (rc = grant(d, &d->rx_ring_page, 0)) < 0) return rc;
    netif_tx_sring_t *txs = d->tx_ring_page.page;
    netif_rx_sring_t *rxs = d->rx_ring_page.page;
    SHARED_RING_INIT(txs);
    FRONT_RING_INIT(&d->tx, txs, PAGE_SIZE);
    SHARED_RING_INIT(rxs);
    FRONT_RING_INIT(&d->rx, rxs, PAGE_SIZE);
    for (unsigned i = 0; i < NETFRONT_TX_BUFS; i++)
        if ((rc = grant(d, &d->txbuf[i], 1)) < 0) return rc;
    for (unsigned i = 0; i < NETFRONT_RX_BUFS; i++)
        if ((rc = grant(d, &d->rxbuf[i], 0)) < 0) return rc;
    /* Stock the rx ring before the backend can connect (it may deliver at once). */
    for (unsigned i = 0; i < NETFRONT_RX_BUFS; i++) post_rx(d, i);
    RING_PUSH_REQUESTS(&d->rx);
    if ((rc = evtchn_alloc_unbound(d->xf.backend_id, &d->port)) < 0) return rc;
    d->port_bound = 1;
    d->kicked = 0;
    evtchn_bind_handler(d->port, netfront_event, d);
    return write_front_nodes(d);
}

/* The backend is Connected (xenfront_ops.connected). */
static int backend_connected(void *arg)
{
    struct netfront *d = arg;
    d->connected = 1;
    d->last_health_ns = now_ns();
    /* Tell the backend about the rx buffers now that it listens. */
    evtchn_notify(d->port);
    return 0;
}

static void teardown(void *arg)
{
    netfront_teardown(arg);
}

/* Linux talk_to_netback: Connected as soon as our keys are written, then wait for the backend's. */
static const struct xenfront_ops netfront_ops = {
    .setup = setup_rings,
    .teardown = teardown,
    .connected = backend_connected,
    .state_after_setup = XenbusStateConnected,
};

/* The toolstack took the vif away (the rings are already torn down): say Closed, stay down. */
static void detached(struct netfront *d)
{
    printk("netfront %s: detached by the toolstack\n", d->name);
    xenfront_unwatch(&d->xf);
    xenbus_switch_state(d->xf.node, XenbusStateClosed);
    d->dead = 1;
    if (d->index == 0) netif0.up = 0;
}

/*
 * The backend went away: start the handshake again with whichever backend
 * our `backend` node names (netfront_poll moves it along without blocking;
 * frames sent meanwhile are dropped, as on a cable pulled out).
 */
static void netfront_recover(struct netfront *d)
{
    if (xenbus_device_detached(d->xf.node, d->xf.backend)) {
        netfront_teardown(d);
        detached(d);
        return;
    }
    printk("netfront %s: backend %s went away; reconnecting\n", d->name, d->xf.backend);
    xenfront_begin(&d->xf, &netfront_ops, d, CONNECT_TIMEOUT_NS);
}

/* One step of a reconnection under way; never blocks. */
static int reconnect_step(struct netfront *d)
{
    int rc = xenfront_step(&d->xf, &netfront_ops, d);
    if (rc == 1) {
        d->st.reconnects++;
        printk("netfront %s: reconnected to %s (backend domain %u)\n", d->name, d->xf.backend, (unsigned)d->xf.backend_id);
        return 1;
    }
    if (rc == -XEN_ENODEV) {
        detached(d);
        return 1;
    }
    if (rc < 0) {
        printk("netfront %s: reconnect failed (%d)\n", d->name, rc);
        d->dead = 1;
        return 1;
    }
    return 0;
}

static int read_mac(struct netfront *d)
{
    char path[MAX_PATH + 16], buf[32];
    snprintk(path, sizeof(path), "%s/mac", d->xf.node);
    if (xenbus_read(XBT_NIL, path, buf, sizeof(buf)) >= 0 && mac_parse(buf, d->mac) == 0) return 0;
    snprintk(path, sizeof(path), "%s/mac", d->xf.backend);
    if (xenbus_read(XBT_NIL, path, buf, sizeof(buf)) >= 0 && mac_parse(buf, d->mac) == 0) return 0;
    return -XEN_ENOENT;
}

static int netfront_add(const char *name)
{
    if (ndevs >= NETFRONT_MAX_DEVS) return -XEN_ENOSPC;
    struct netfront *d = &devs[ndevs];
    memset(d, 0, sizeof(*d));
    d->index = (unsigned)ndevs;
    d->tx_ring_page.gref = d->rx_ring_page.gref = NO_GREF;
    for (unsigned i = 0; i < NETFRONT_TX_BUFS; i++) d->txbuf[i].gref = NO_GREF;
    for (unsigned i = 0; i < NETFRONT_RX_BUFS; i++) d->rxbuf[i].gref = NO_GREF;
    snprintk(d->name, sizeof(d->name), "vif%d", ndevs);
    char node[XENFRONT_PATH], token[32];
    snprintk(node, sizeof(node), "device/vif/%s", name);
    snprintk(token, sizeof(token), "netfront-%s", name);
    int rc = xenfront_init(&d->xf, node, token);
    if (rc < 0) { printk("netfront %s: no backend node (%d)\n", node, rc); return rc; }
    if ((rc = read_mac(d)) < 0) { printk("netfront %s: no usable mac node\n", node); xenfront_unwatch(&d->xf); return rc; }
    if ((rc = xenfront_connect(&d->xf, &netfront_ops, d, CONNECT_TIMEOUT_NS)) < 0) {
        printk("netfront %s: cannot connect to %s (%d)\n", node, d->xf.backend, rc);
        xenfront_unwatch(&d->xf);
        return rc;
    }
    ndevs++;
    char macb[18];
    printk("netfront %s: mac %s, backend domain %u (%s)\n", d->name, mac_format(d->mac, macb),
           (unsigned)d->xf.backend_id, d->xf.backend);
    return 0;
}

static int stack_xmit(const void *frame, size_t len)
{
    return netfront_xmit(&devs[0], frame, len);
}

static void stack_poll(void)
{
    netfront_poll(&devs[0]);
}

int netfront_probe(void)
{
    char list[128];
    int n = xenbus_ls(XBT_NIL, "device/vif", list, sizeof(list));
    if (n <= 0) return 0;
    const char *p = list;
    for (int i = 0; i < n; i++) {
        netfront_add(p);
        p += strlen(p) + 1;
    }
    if (ndevs) {
        net_attach(devs[0].mac, stack_xmit, stack_poll);
        /* Frames keep flowing while any driver waits for xenstored. */
        xenbus_set_idle(net_poll);
    }
    return ndevs;
}

int netfront_count(void) { return ndevs; }
struct netfront *netfront_get(int index) { return index >= 0 && index < ndevs ? &devs[index] : NULL; }
void netfront_mac(struct netfront *d, uint8_t mac[6]) { memcpy(mac, d->mac, ETH_ALEN); }
const char *netfront_name(struct netfront *d) { return d->name; }
const char *netfront_backend(struct netfront *d) { return d->xf.backend; }
int netfront_connected(struct netfront *d) { return d->connected; }
void netfront_get_stats(struct netfront *d, struct netfront_stats *st) { *st = d->st; }
