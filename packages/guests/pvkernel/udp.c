/*
 * UDP (RFC 768): datagrams to bound ports go to their handler; the
 * checksum (over the RFC 768 pseudo-header) is set on output and checked
 * on input when the sender set one (0 = none).
 */
#include "kernel.h"
#include "klib.h"
#include "net.h"

struct udp_binding {
    uint16_t port;
    udp_handler_t handler;
    void *arg;
};

static struct udp_binding bindings[UDP_MAX_BINDINGS];
static uint8_t udp_frame[ETH_FRAME_MAX];

int udp_bind(uint16_t port, udp_handler_t h, void *arg)
{
    struct udp_binding *free_slot = NULL;
    for (int i = 0; i < UDP_MAX_BINDINGS; i++) {
        if (bindings[i].handler && bindings[i].port == port) return -XEN_EEXIST;
        if (!bindings[i].handler && !free_slot) free_slot = &bindings[i];
    }
    if (!free_slot || !h) return free_slot ? -XEN_EINVAL : -XEN_ENOSPC;
    *free_slot = (struct udp_binding){ .port = port, .handler = h, .arg = arg };
    return 0;
}

void udp_unbind(uint16_t port)
{
    for (int i = 0; i < UDP_MAX_BINDINGS; i++)
        if (bindings[i].handler && bindings[i].port == port) bindings[i].handler = NULL;
}

static uint32_t pseudo_sum(uint32_t src, uint32_t dst, size_t udp_len)
{
    uint8_t ph[12];
    put_be32(ph, src);
    put_be32(ph + 4, dst);
    ph[8] = 0;
    ph[9] = IP_PROTO_UDP;
    put_be16(ph + 10, (uint16_t)udp_len);
    return inet_sum(ph, sizeof(ph), 0);
}

void udp_input(const uint8_t *eth_src, uint32_t src, uint32_t dst, const uint8_t *p, size_t len)
{
    (void)eth_src;
    if (len < UDP_HLEN) goto drop;
    size_t ulen = get_be16(p + 4);
    if (ulen < UDP_HLEN || ulen > len) goto drop;
    if (get_be16(p + 6) != 0 && inet_fold(inet_sum(p, ulen, pseudo_sum(src, dst, ulen))) != 0) {
        netif0.stats.rx_bad_csum++;
        return;
    }
    netif0.stats.udp_in++;
    uint16_t sport = get_be16(p), dport = get_be16(p + 2);
    for (int i = 0; i < UDP_MAX_BINDINGS; i++)
        if (bindings[i].handler && bindings[i].port == dport) {
            bindings[i].handler(src, sport, dport, p + UDP_HLEN, ulen - UDP_HLEN, bindings[i].arg);
            return;
        }
drop:
    netif0.stats.rx_dropped++;
}

int udp_send(uint32_t dst, uint16_t sport, uint16_t dport, const void *data, size_t len)
{
    uint8_t mac[ETH_ALEN];
    if (len + UDP_HLEN + IP_HLEN > ETH_MTU) return -XEN_E2BIG;
    int rc = arp_resolve(dst, mac, 3000000000ull);   /* before building: resolving may poll */
    if (rc < 0) return rc;
    uint8_t *u = udp_frame + ETH_HLEN + IP_HLEN;
    size_t ulen = UDP_HLEN + len;
    put_be16(u, sport);
    put_be16(u + 2, dport);
    put_be16(u + 4, (uint16_t)ulen);
    put_be16(u + 6, 0);
    memcpy(u + UDP_HLEN, data, len);
    uint16_t csum = inet_fold(inet_sum(u, ulen, pseudo_sum(netif0.ip, dst, ulen)));
    put_be16(u + 6, csum ? csum : 0xffff);   /* 0 would mean "no checksum" */
    return ip_output(udp_frame, dst, mac, IP_PROTO_UDP, ulen);
}
