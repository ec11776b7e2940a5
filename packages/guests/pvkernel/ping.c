/*
 * ping, udp-echo and udp: the network workloads and shell commands (ping's
 * linger=S keeps answering for S seconds after the last echo), with
 * output shaped like Linux iputils ping:
 *
 *   PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.
 *   64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=1.23 ms
 *   --- 10.0.0.2 ping statistics ---
 *   4 packets transmitted, 4 received, 0% packet loss, time 3004ms
 *   rtt min/avg/max/mdev = 0.912/1.100/1.230/0.120 ms
 */
#include "kernel.h"
#include "klib.h"
#include "net.h"
#include "netfront.h"
#include "workloads.h"

#define NS_PER_MS 1000000ull

void net_idle(uint64_t deadline_ns)
{
    net_poll();
    netfront_wait(netfront_get(0), deadline_ns);
}

struct ping_state {
    uint32_t dst;
    uint16_t id;
    uint16_t seq;          /* the one we wait for */
    int got;
    uint64_t rtt_ns;
    uint8_t ttl;
    size_t len;
};

static void on_reply(const struct icmp_echo_reply *r, void *arg)
{
    struct ping_state *p = arg;
    if (r->from != p->dst || r->id != p->id || r->seq != p->seq || p->got) return;
    p->got = 1;
    p->rtt_ns = r->sent_ns && r->recv_ns >= r->sent_ns ? r->recv_ns - r->sent_ns : 0;
    p->ttl = r->ttl;
    p->len = r->len;
}

/* Linux ping's precision: 3 decimals under 1 ms, 2 under 10, 1 under 100, then none. */
static void fmt_ms(char *buf, size_t len, uint64_t ns)
{
    uint64_t us = ns / 1000;
    if (us < 1000) fmt_fixed(buf, len, us, 3);
    else if (us < 10000) fmt_fixed(buf, len, us / 10, 2);
    else if (us < 100000) fmt_fixed(buf, len, us / 100, 1);
    else fmt_fixed(buf, len, us / 1000, 0);
}

static uint64_t isqrt(uint64_t v)
{
    uint64_t r = 0, bit = 1ull << 62;
    while (bit > v) bit >>= 2;
    for (; bit; bit >>= 2) {
        if (v >= r + bit) { v -= r + bit; r = (r >> 1) + bit; }
        else r >>= 1;
    }
    return r;
}

int ping_run(int argc, char **argv)
{
    uint64_t count, interval_ms, size, wait_s;
    uint32_t dst;
    if (argc < 2 || ip_parse(argv[1], &dst) < 0) {
        printk("usage: ping IP [count=N] [interval=MS] [size=BYTES] [wait=S] [linger=S]\n");
        return -XEN_EINVAL;
    }
    uint64_t linger_s;
    if (opt_u64(argc, argv, "count", 4, &count) < 0 || opt_u64(argc, argv, "interval", 1000, &interval_ms) < 0 ||
        opt_u64(argc, argv, "size", 56, &size) < 0 || opt_u64(argc, argv, "wait", 10, &wait_s) < 0 ||
        opt_u64(argc, argv, "linger", 0, &linger_s) < 0)
        return -XEN_EINVAL;
    if (!netif0.up) { printk("ping: no network interface\n"); return -XEN_ENODEV; }
    if (!netif0.ip) { printk("ping: no IP address (add ip=10.0.0.N to the command line)\n"); return -XEN_EINVAL; }
    if (size > ETH_MTU - IP_HLEN - ICMP_HLEN) size = ETH_MTU - IP_HLEN - ICMP_HLEN;
    char ipb[16], me[16];
    ip_format(dst, ipb);
    ip_format(netif0.ip, me);
    printk("PING %s (%s) %lu(%lu) bytes of data.\n", ipb, ipb, (unsigned long)size,
           (unsigned long)(size + ICMP_HLEN + IP_HLEN));

    /* The peer may still be booting: give ARP up to wait= seconds before the first echo. */
    uint8_t mac[ETH_ALEN];
    int arp_ok = arp_resolve(dst, mac, wait_s * 1000 * NS_PER_MS) == 0;

    struct ping_state st = { .dst = dst, .id = (uint16_t)(0x5800 ^ xen_domid()) };
    icmp_set_reply_handler(on_reply, &st);
    uint64_t start = now_ns(), sum_us = 0, sum2_us = 0, min_ns = ~0ull, max_ns = 0;
    unsigned sent = 0, received = 0;
    for (uint64_t i = 1; i <= count; i++) {
        uint64_t t0 = now_ns();
        st.seq = (uint16_t)i;
        st.got = 0;
        int rc = arp_ok ? icmp_send_echo(dst, st.id, st.seq, size) : -XEN_ETIMEDOUT;
        sent++;
        if (rc == -XEN_ETIMEDOUT) {
            printk("From %s icmp_seq=%lu Destination Host Unreachable\n", me, (unsigned long)i);
        } else if (rc < 0) {
            printk("ping: sendmsg: error %d\n", rc);
        } else {
            /* Wait up to the interval (at least a second) for this echo's reply. */
            uint64_t deadline = t0 + (interval_ms > 1000 ? interval_ms : 1000) * NS_PER_MS;
            while (!st.got && now_ns() < deadline) net_idle(deadline);
            if (st.got) {
                char t[24];
                received++;
                fmt_ms(t, sizeof(t), st.rtt_ns);
                printk("%lu bytes from %s: icmp_seq=%lu ttl=%u time=%s ms\n", (unsigned long)st.len, ipb,
                       (unsigned long)i, (unsigned)st.ttl, t);
                uint64_t us = st.rtt_ns / 1000;
                sum_us += us;
                sum2_us += us * us;
                if (st.rtt_ns < min_ns) min_ns = st.rtt_ns;
                if (st.rtt_ns > max_ns) max_ns = st.rtt_ns;
            }
        }
        if (i < count) {
            uint64_t next = t0 + interval_ms * NS_PER_MS;
            while (now_ns() < next) net_idle(next);
        }
    }
    icmp_set_reply_handler(NULL, NULL);
    uint64_t elapsed_ms = (now_ns() - start) / NS_PER_MS;
    printk("--- %s ping statistics ---\n", ipb);
    printk("%u packets transmitted, %u received, %u%% packet loss, time %lums\n", sent, received,
           sent ? (sent - received) * 100 / sent : 0, (unsigned long)elapsed_ms);
    if (received) {
        uint64_t avg = sum_us / received, var = sum2_us / received - avg * avg;
        char a[24], b[24], c[24], m[24];
        fmt_fixed(a, sizeof(a), min_ns / 1000, 3);
        fmt_fixed(b, sizeof(b), avg, 3);
        fmt_fixed(c, sizeof(c), max_ns / 1000, 3);
        fmt_fixed(m, sizeof(m), isqrt(var), 3);
        printk("rtt min/avg/max/mdev = %s/%s/%s/%s ms\n", a, b, c, m);
    }
    /* linger=S: keep answering (ARP, echo) for S more seconds, so a peer pinging us can finish too. */
    uint64_t until = now_ns() + linger_s * 1000 * NS_PER_MS;
    while (now_ns() < until) net_idle(until);
    return received ? 0 : -XEN_ETIMEDOUT;
}

/* ---- udp-echo ---- */

static uint64_t echoed;

static void echo_back(uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len, void *arg)
{
    (void)arg;
    if (udp_send(src, dport, sport, data, len) == 0) echoed++;
}

int udp_echo_run(int argc, char **argv)
{
    uint64_t port;
    if (opt_u64(argc, argv, "port", 7, &port) < 0 || port == 0 || port > 65535) return -XEN_EINVAL;
    if (!netif0.up || !netif0.ip) { printk("udp-echo: no network interface or IP address\n"); return -XEN_ENODEV; }
    int rc = udp_bind((uint16_t)port, echo_back, NULL);
    if (rc < 0) { printk("udp-echo: cannot bind port %lu (%d)\n", (unsigned long)port, rc); return rc; }
    char me[16];
    printk("udp-echo: listening on %s port %lu\n", ip_format(netif0.ip, me), (unsigned long)port);
    for (;;) net_idle(0);
}

/* ---- udp IP PORT TEXT: one datagram, print the answer (for testing udp-echo) ---- */

struct udp_wait {
    int got;
    char text[128];
    uint32_t from;
    uint16_t port;
};

static void on_udp_reply(uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len, void *arg)
{
    (void)dport;
    struct udp_wait *w = arg;
    if (len >= sizeof(w->text)) len = sizeof(w->text) - 1;
    memcpy(w->text, data, len);
    w->text[len] = '\0';
    w->from = src;
    w->port = sport;
    w->got = 1;
}

int udp_send_run(int argc, char **argv)
{
    uint32_t dst;
    unsigned long long port;
    uint64_t sport;
    if (argc < 4 || ip_parse(argv[1], &dst) < 0 || parse_u64(argv[2], &port) < 0 || !port || port > 65535) {
        printk("usage: udp IP PORT TEXT [sport=N]\n");
        return -XEN_EINVAL;
    }
    if (opt_u64(argc, argv, "sport", 40000, &sport) < 0) return -XEN_EINVAL;
    struct udp_wait w = { 0 };
    int rc = udp_bind((uint16_t)sport, on_udp_reply, &w);
    if (rc < 0) { printk("udp: cannot bind port %lu (%d)\n", (unsigned long)sport, rc); return rc; }
    rc = udp_send(dst, (uint16_t)sport, (uint16_t)port, argv[3], strlen(argv[3]));
    if (rc == 0) {
        uint64_t deadline = now_ns() + 3000 * NS_PER_MS;
        while (!w.got && now_ns() < deadline) net_idle(deadline);
        char ipb[16];
        if (w.got) printk("udp: reply from %s:%u: %s\n", ip_format(w.from, ipb), (unsigned)w.port, w.text);
        else { printk("udp: no reply\n"); rc = -XEN_ETIMEDOUT; }
    } else {
        printk("udp: send failed (%d)\n", rc);
    }
    udp_unbind((uint16_t)sport);
    return rc;
}
