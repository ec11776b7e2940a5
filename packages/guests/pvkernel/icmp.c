/*
 * ICMP echo (RFC 792): answer echo requests (type 8) with echo replies
 * (type 0) carrying the same id, sequence and data; send echo requests
 * whose first 8 payload bytes are the send time, as Linux ping does, and
 * hand matching replies to the registered handler (the ping workload).
 */
#include "kernel.h"
#include "klib.h"
#include "net.h"

#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8

static uint8_t reply_frame[ETH_FRAME_MAX], request_frame[ETH_FRAME_MAX];
static icmp_reply_handler_t reply_handler;
static void *reply_arg;

void icmp_set_reply_handler(icmp_reply_handler_t h, void *arg)
{
    reply_handler = h;
    reply_arg = arg;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8) p[i] = (uint8_t)v;
}

void icmp_input(const uint8_t *eth_src, uint32_t src, uint8_t ttl, const uint8_t *p, size_t len)
{
    if (len < ICMP_HLEN || inet_fold(inet_sum(p, len, 0)) != 0) {
        netif0.stats.rx_bad_csum++;
        return;
    }
    if (p[0] == ICMP_ECHO_REQUEST && p[1] == 0) {
        netif0.stats.icmp_echo_in++;
        if (len + IP_HLEN > ETH_MTU) return;
        uint8_t *r = reply_frame + ETH_HLEN + IP_HLEN;
        memcpy(r, p, len);
        r[0] = ICMP_ECHO_REPLY;
        put_be16(r + 2, 0);
        put_be16(r + 2, inet_fold(inet_sum(r, len, 0)));
        ip_output(reply_frame, src, eth_src, IP_PROTO_ICMP, len);
    } else if (p[0] == ICMP_ECHO_REPLY && p[1] == 0 && reply_handler) {
        struct icmp_echo_reply rep = {
            .from = src, .id = get_be16(p + 4), .seq = get_be16(p + 6), .ttl = ttl, .len = len,
            .sent_ns = len >= ICMP_HLEN + 8 ? get_le64(p + ICMP_HLEN) : 0, .recv_ns = now_ns(),
        };
        reply_handler(&rep, reply_arg);
    }
}

int icmp_send_echo(uint32_t dst, uint16_t id, uint16_t seq, size_t payload_len)
{
    uint8_t mac[ETH_ALEN];
    if (payload_len + ICMP_HLEN + IP_HLEN > ETH_MTU) return -XEN_E2BIG;
    /* Resolve first: polling for the ARP reply may send frames of its own. */
    int rc = arp_resolve(dst, mac, 3000000000ull);
    if (rc < 0) return rc;
    uint8_t *e = request_frame + ETH_HLEN + IP_HLEN;
    e[0] = ICMP_ECHO_REQUEST;
    e[1] = 0;
    put_be16(e + 2, 0);
    put_be16(e + 4, id);
    put_be16(e + 6, seq);
    for (size_t i = 0; i < payload_len; i++) e[ICMP_HLEN + i] = (uint8_t)(0x10 + i);   /* Linux ping's fill */
    if (payload_len >= 8) put_le64(e + ICMP_HLEN, now_ns());
    put_be16(e + 2, inet_fold(inet_sum(e, ICMP_HLEN + payload_len, 0)));
    return ip_output(request_frame, dst, mac, IP_PROTO_ICMP, ICMP_HLEN + payload_len);
}
