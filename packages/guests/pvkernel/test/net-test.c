/*
 * The PV kernel's IP stack on the host (net.c arp.c ip.c icmp.c udp.c),
 * plus the disk pattern and the small helpers: frames go in through
 * net_input() as netfront would deliver them, and what the stack
 * transmits is captured and parsed back.  Hostile frames (truncated,
 * bad checksums, lying lengths, fragments) must be dropped quietly.
 *
 *   net-test            run the checks
 *   net-test pattern SEED SECTOR   print that sector's 512 pattern bytes in hex (the TS test compares)
 *   net-test crc32 TEXT            print crc32 of TEXT
 */
#include "host-stubs.h"
#include "../net.h"
#include "../pattern.h"
#include "../workloads.h"

static const uint8_t MY_MAC[6] = { 0x00, 0x16, 0x3e, 0x00, 0x00, 0x01 };
static const uint8_t PEER_MAC[6] = { 0x00, 0x16, 0x3e, 0x00, 0x00, 0x02 };
#define MY_IP 0x0a000001u    /* 10.0.0.1 */
#define PEER_IP 0x0a000002u  /* 10.0.0.2 */

static uint8_t sent[8][2048];
static size_t sent_len[8];
static int nsent;

static int capture(const void *frame, size_t len)
{
    if (nsent < 8) { memcpy(sent[nsent], frame, len); sent_len[nsent] = len; }
    nsent++;
    return 0;
}

/* The peer answers ARP requests for PEER_IP as soon as they are sent (driven by arp_resolve's poll). */
static int peer_answers_arp;
static void fake_poll(void);

static size_t build_eth(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    put_be16(f + 12, type);
    return ETH_HLEN;
}

static size_t build_arp(uint8_t *f, uint16_t op, const uint8_t *sha, uint32_t spa, const uint8_t *tha, uint32_t tpa)
{
    size_t n = build_eth(f, op == 1 ? eth_broadcast : tha, sha, ETHERTYPE_ARP);
    uint8_t *a = f + n;
    put_be16(a, 1); put_be16(a + 2, 0x0800); a[4] = 6; a[5] = 4; put_be16(a + 6, op);
    memcpy(a + 8, sha, 6); put_be32(a + 14, spa); memcpy(a + 18, tha, 6); put_be32(a + 24, tpa);
    return n + 28;
}

static size_t build_ip(uint8_t *f, uint8_t proto, uint32_t src, uint32_t dst, const uint8_t *payload, size_t len)
{
    size_t n = build_eth(f, MY_MAC, PEER_MAC, ETHERTYPE_IPV4);
    uint8_t *h = f + n;
    memset(h, 0, IP_HLEN);
    h[0] = 0x45; put_be16(h + 2, (uint16_t)(IP_HLEN + len)); put_be16(h + 4, 77); h[8] = 63; h[9] = proto;
    put_be32(h + 12, src); put_be32(h + 16, dst);
    put_be16(h + 10, inet_fold(inet_sum(h, IP_HLEN, 0)));
    memcpy(h + IP_HLEN, payload, len);
    return n + IP_HLEN + len;
}

static void fake_poll(void)
{
    if (!peer_answers_arp) return;
    for (int i = 0; i < nsent && i < 8; i++) {
        uint8_t *f = sent[i];
        if (get_be16(f + 12) == ETHERTYPE_ARP && get_be16(f + 20) == 1 && get_be32(f + 38) == PEER_IP) {
            uint8_t r[64];
            size_t n = build_arp(r, 2, PEER_MAC, PEER_IP, MY_MAC, MY_IP);
            peer_answers_arp = 0;
            net_input(r, n);
            return;
        }
    }
}

static void reset(void)
{
    nsent = 0;
    memset(&netif0.stats, 0, sizeof(netif0.stats));
}

static void test_checksum(void)
{
    /* RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2. */
    const uint8_t v[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
    CHECK(inet_sum(v, sizeof(v), 0) == 0xddf2, "sum %x", inet_sum(v, sizeof(v), 0));
    CHECK(inet_fold(0xddf2) == 0x220d, "checksum");
    const uint8_t odd[] = { 0x01, 0x02, 0x03 };
    CHECK(inet_sum(odd, 3, 0) == 0x0102 + 0x0300, "odd length pads with zero");
    /* A header with its checksum in place sums to 0xffff (folds to 0). */
    uint8_t h[20] = { 0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2 };
    put_be16(h + 10, inet_fold(inet_sum(h, 20, 0)));
    CHECK(inet_fold(inet_sum(h, 20, 0)) == 0, "verifies");
}

static void test_addresses(void)
{
    uint32_t ip;
    char b[20];
    CHECK(ip_parse("10.0.0.254", &ip) == 0 && ip == 0x0a0000fe, "parse");
    CHECK(ip_parse("10.0.0", &ip) < 0 && ip_parse("10.0.0.256", &ip) < 0 && ip_parse("10.0.0.1x", &ip) < 0 &&
          ip_parse("", &ip) < 0 && ip_parse("1..2.3", &ip) < 0 && ip_parse("00001.2.3.4", &ip) < 0, "rejects");
    CHECK(!strcmp(ip_format(0xc0a80101, b), "192.168.1.1"), "format %s", b);
    uint8_t mac[6];
    CHECK(mac_parse("00:16:3e:AB:cd:0f", mac) == 0 && mac[3] == 0xab && mac[5] == 0x0f, "mac parse");
    CHECK(mac_parse("00:16:3e:ab:cd", mac) < 0 && mac_parse("00:16:3e:ab:cd:0f:11", mac) < 0 &&
          mac_parse("00-16-3e-ab-cd-0f", mac) < 0, "mac rejects");
    CHECK(!strcmp(mac_format(PEER_MAC, b), "00:16:3e:00:00:02"), "mac format %s", b);
}

static void test_arp(void)
{
    uint8_t f[128];
    reset();
    /* A request for our address gets a reply to the asker, and teaches us its MAC. */
    size_t n = build_arp(f, 1, PEER_MAC, PEER_IP, (const uint8_t[6]){ 0 }, MY_IP);
    net_input(f, n);
    CHECK(nsent == 1, "one reply (%d)", nsent);
    uint8_t *r = sent[0];
    CHECK(!memcmp(r, PEER_MAC, 6) && !memcmp(r + 6, MY_MAC, 6) && get_be16(r + 12) == ETHERTYPE_ARP, "eth header");
    CHECK(get_be16(r + 20) == 2 && !memcmp(r + 22, MY_MAC, 6) && get_be32(r + 28) == MY_IP &&
          !memcmp(r + 32, PEER_MAC, 6) && get_be32(r + 38) == PEER_IP, "ARP reply fields");
    CHECK(sent_len[0] == 60, "padded to the Ethernet minimum (%zu)", sent_len[0]);
    CHECK(arp_lookup(PEER_IP) && !memcmp(arp_lookup(PEER_IP), PEER_MAC, 6), "learned the asker");
    /* A request for someone else: no reply, and a stranger is not added. */
    reset();
    n = build_arp(f, 1, (const uint8_t[6]){ 0, 0x16, 0x3e, 9, 9, 9 }, 0x0a000009, (const uint8_t[6]){ 0 }, 0x0a000007);
    net_input(f, n);
    CHECK(nsent == 0 && !arp_lookup(0x0a000009), "ignored");
    /* Hostile: truncated, wrong hardware length. */
    net_input(f, ETH_HLEN + 10);
    n = build_arp(f, 1, PEER_MAC, PEER_IP, (const uint8_t[6]){ 0 }, MY_IP);
    f[ETH_HLEN + 4] = 8;
    net_input(f, n);
    CHECK(nsent == 0 && netif0.stats.rx_dropped == 2, "dropped (%lu)", (unsigned long)netif0.stats.rx_dropped);
    /* Resolution: a request goes out, the peer's reply (delivered by the poll) completes it. */
    arp_flush();
    reset();
    peer_answers_arp = 1;
    uint8_t mac[6];
    CHECK(arp_resolve(PEER_IP, mac, 2000000000ull) == 0 && !memcmp(mac, PEER_MAC, 6), "resolved");
    CHECK(nsent == 1 && !memcmp(sent[0], eth_broadcast, 6) && get_be32(sent[0] + 38) == PEER_IP, "asked by broadcast");
    /* Nobody answers: a timeout after retries. */
    reset();
    uint64_t t0 = now_ns();
    CHECK(arp_resolve(0x0a000063, mac, 1600000000ull) == -XEN_ETIMEDOUT, "timeout");
    CHECK(nsent == 4 && now_ns() - t0 >= 1600000000ull, "asked every 500 ms (%d)", nsent);
}

static void test_icmp_echo_reply(void)
{
    uint8_t icmp[64 + 8], f[256];
    reset();
    icmp[0] = 8; icmp[1] = 0; put_be16(icmp + 2, 0); put_be16(icmp + 4, 0x1234); put_be16(icmp + 6, 7);
    for (int i = 8; i < 64; i++) icmp[i] = (uint8_t)i;
    put_be16(icmp + 2, inet_fold(inet_sum(icmp, 64, 0)));
    size_t n = build_ip(f, IP_PROTO_ICMP, PEER_IP, MY_IP, icmp, 64);
    net_input(f, n);
    CHECK(nsent == 1, "one reply");
    uint8_t *r = sent[0], *h = r + ETH_HLEN, *e = h + IP_HLEN;
    CHECK(!memcmp(r, PEER_MAC, 6), "to the sender's MAC");
    CHECK(h[0] == 0x45 && get_be16(h + 2) == 84 && h[9] == 1 && get_be32(h + 12) == MY_IP && get_be32(h + 16) == PEER_IP,
          "IP header");
    CHECK(inet_fold(inet_sum(h, IP_HLEN, 0)) == 0, "IP checksum");
    CHECK(e[0] == 0 && get_be16(e + 4) == 0x1234 && get_be16(e + 6) == 7 && !memcmp(e + 8, icmp + 8, 56), "echo reply");
    CHECK(inet_fold(inet_sum(e, 64, 0)) == 0, "ICMP checksum");

    /* Hostile: bad IP checksum, bad ICMP checksum, total length beyond the frame, a fragment, not for us. */
    reset();
    n = build_ip(f, IP_PROTO_ICMP, PEER_IP, MY_IP, icmp, 64);
    f[ETH_HLEN + 10] ^= 1;
    net_input(f, n);
    n = build_ip(f, IP_PROTO_ICMP, PEER_IP, MY_IP, icmp, 64);
    f[ETH_HLEN + IP_HLEN + 9] ^= 0xff;
    net_input(f, n);
    n = build_ip(f, IP_PROTO_ICMP, PEER_IP, MY_IP, icmp, 64);
    net_input(f, n - 10);
    n = build_ip(f, IP_PROTO_ICMP, PEER_IP, MY_IP, icmp, 64);
    put_be16(f + ETH_HLEN + 6, 0x2000);   /* more fragments */
    put_be16(f + ETH_HLEN + 10, 0);
    put_be16(f + ETH_HLEN + 10, inet_fold(inet_sum(f + ETH_HLEN, IP_HLEN, 0)));
    net_input(f, n);
    n = build_ip(f, IP_PROTO_ICMP, PEER_IP, 0x0a000005, icmp, 64);
    net_input(f, n);
    net_input(f, 5);
    CHECK(nsent == 0, "nothing answered (%d)", nsent);
    CHECK(netif0.stats.rx_bad_csum == 2, "two bad checksums (%lu)", (unsigned long)netif0.stats.rx_bad_csum);
}

static struct icmp_echo_reply last_reply;
static int replies;
static void on_reply(const struct icmp_echo_reply *r, void *arg) { (void)arg; last_reply = *r; replies++; }

static void test_icmp_echo_request(void)
{
    reset();
    icmp_set_reply_handler(on_reply, NULL);
    CHECK(icmp_send_echo(PEER_IP, 0x4242, 3, 56) == 0, "sent");   /* PEER_MAC is cached by now */
    CHECK(nsent == 1, "one frame");
    uint8_t *h = sent[0] + ETH_HLEN, *e = h + IP_HLEN;
    CHECK(get_be16(h + 2) == 84 && e[0] == 8 && get_be16(e + 4) == 0x4242 && get_be16(e + 6) == 3, "echo request");
    CHECK(inet_fold(inet_sum(e, 64, 0)) == 0, "checksum");
    /* The peer's reply (the request echoed with type 0) reaches the handler with the timestamp. */
    uint8_t icmp[64], f[256];
    memcpy(icmp, e, 64);
    icmp[0] = 0;
    put_be16(icmp + 2, 0);
    put_be16(icmp + 2, inet_fold(inet_sum(icmp, 64, 0)));
    fake_now += 1500000;
    size_t n = build_ip(f, IP_PROTO_ICMP, PEER_IP, MY_IP, icmp, 64);
    net_input(f, n);
    CHECK(replies == 1 && last_reply.seq == 3 && last_reply.id == 0x4242 && last_reply.ttl == 63 && last_reply.len == 64,
          "reply matched");
    CHECK(last_reply.recv_ns - last_reply.sent_ns == 1500000, "rtt from the timestamp (%lu)",
          (unsigned long)(last_reply.recv_ns - last_reply.sent_ns));
    icmp_set_reply_handler(NULL, NULL);
    CHECK(icmp_send_echo(PEER_IP, 1, 1, 1600) == -XEN_E2BIG, "no fragmentation");
}

static int udp_calls;
static void echo(uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len, void *arg)
{
    (void)arg;
    udp_calls++;
    udp_send(src, dport, sport, data, len);
}

static void test_udp(void)
{
    reset();
    CHECK(udp_bind(7, echo, NULL) == 0, "bind");
    CHECK(udp_bind(7, echo, NULL) == -XEN_EEXIST, "bound twice");
    uint8_t u[64], f[256];
    const char *msg = "hello xenbox";
    size_t len = strlen(msg), ulen = UDP_HLEN + len;
    put_be16(u, 5555); put_be16(u + 2, 7); put_be16(u + 4, (uint16_t)ulen); put_be16(u + 6, 0);
    memcpy(u + 8, msg, len);
    /* checksum over the pseudo-header */
    uint8_t ph[12];
    put_be32(ph, PEER_IP); put_be32(ph + 4, MY_IP); ph[8] = 0; ph[9] = 17; put_be16(ph + 10, (uint16_t)ulen);
    put_be16(u + 6, inet_fold(inet_sum(u, ulen, inet_sum(ph, 12, 0))));
    size_t n = build_ip(f, IP_PROTO_UDP, PEER_IP, MY_IP, u, ulen);
    net_input(f, n);
    CHECK(udp_calls == 1 && nsent == 1, "echoed (%d, %d)", udp_calls, nsent);
    uint8_t *h = sent[0] + ETH_HLEN, *r = h + IP_HLEN;
    CHECK(h[9] == 17 && get_be32(h + 16) == PEER_IP, "to the sender");
    CHECK(get_be16(r) == 7 && get_be16(r + 2) == 5555 && get_be16(r + 4) == ulen && !memcmp(r + 8, msg, len), "ports and data");
    put_be32(ph, MY_IP); put_be32(ph + 4, PEER_IP);
    CHECK(inet_fold(inet_sum(r, ulen, inet_sum(ph, 12, 0))) == 0, "UDP checksum verifies");
    /* A corrupted datagram is dropped; one without checksum (0) is accepted; a closed port is dropped. */
    reset();
    f[n - 1] ^= 0x55;
    net_input(f, n);
    CHECK(udp_calls == 1 && netif0.stats.rx_bad_csum == 1, "bad checksum dropped");
    put_be16(u + 6, 0);
    n = build_ip(f, IP_PROTO_UDP, PEER_IP, MY_IP, u, ulen);
    net_input(f, n);
    CHECK(udp_calls == 2, "no checksum accepted");
    put_be16(u + 2, 9);
    n = build_ip(f, IP_PROTO_UDP, PEER_IP, MY_IP, u, ulen);
    net_input(f, n);
    CHECK(udp_calls == 2 && netif0.stats.rx_dropped == 1, "closed port");
    /* UDP length beyond the IP payload. */
    put_be16(u + 2, 7);
    put_be16(u + 4, 200);
    n = build_ip(f, IP_PROTO_UDP, PEER_IP, MY_IP, u, ulen);
    net_input(f, n);
    CHECK(udp_calls == 2, "lying length dropped");
    udp_unbind(7);
}

static void test_pattern(void)
{
    static uint64_t buf[3 * 64];
    pattern_fill(42, 100, buf, 3);
    CHECK(pattern_check(42, 100, buf, 3) == -1, "own pattern verifies");
    CHECK(pattern_check(43, 100, buf, 3) == 0, "another seed does not");
    CHECK(pattern_check(42, 101, buf + 64, 2) == -1, "a sector checks on its own");
    ((uint8_t *)buf)[2 * 512 + 17] ^= 1;
    CHECK(pattern_check(42, 100, buf, 3) == 2, "first bad sector found");
    /* Reference values of the definition in pattern.h: seed 1, sector 0. */
    uint64_t x = 1 * 0x9E3779B97F4A7C15ull + 1 * 0xBF58476D1CE4E5B9ull;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    pattern_fill(1, 0, buf, 1);
    CHECK(buf[0] == x, "first word %lx", (unsigned long)buf[0]);
}

static void test_helpers(void)
{
    CHECK(crc32_update(0, "123456789", 9) == 0xCBF43926u, "crc32 check value");
    CHECK(crc32_update(crc32_update(0, "1234", 4), "56789", 5) == 0xCBF43926u, "crc32 continues");
    char b[32];
    fmt_fixed(b, sizeof(b), 1234, 3); CHECK(!strcmp(b, "1.234"), "%s", b);
    fmt_fixed(b, sizeof(b), 5, 2); CHECK(!strcmp(b, "0.05"), "%s", b);
    fmt_fixed(b, sizeof(b), 77, 0); CHECK(!strcmp(b, "77"), "%s", b);
    char line[64], *argv[8];
    int argc = split_words("  ping 10.0.0.2   count=3 ", line, sizeof(line), argv, 8);
    CHECK(argc == 3 && !strcmp(argv[0], "ping") && !strcmp(argv[2], "count=3"), "split");
    uint64_t v;
    CHECK(opt_u64(argc, argv, "count", 4, &v) == 0 && v == 3, "count=3");
    CHECK(opt_u64(argc, argv, "size", 56, &v) == 0 && v == 56, "default");
    argv[2] = "count=x";
    CHECK(opt_u64(argc, argv, "count", 4, &v) < 0, "not a number");
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "pattern")) {
        static uint8_t sector[512];
        pattern_fill(strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0), sector, 1);
        for (int i = 0; i < 512; i++) printf("%02x", sector[i]);
        printf("\n");
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "crc32")) {
        printf("%08x\n", crc32_update(0, argv[2], strlen(argv[2])));
        return 0;
    }
    net_attach(MY_MAC, capture, fake_poll);
    net_set_ip(MY_IP, 0xffffff00u);
    test_checksum();
    test_addresses();
    test_arp();
    test_icmp_echo_reply();
    test_icmp_echo_request();
    test_udp();
    test_pattern();
    test_helpers();
    return report("net");
}
