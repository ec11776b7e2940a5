/*
 * IPv4 (RFC 791) for the PV kernel: 20-byte headers only on output, no
 * fragmentation (DF set; fragments received are dropped), header checksum
 * checked on input and set on output.  Delivers ICMP and UDP.
 */
#include "kernel.h"
#include "klib.h"
#include "net.h"

#define IP_DEFAULT_TTL 64
#define IP_FLAG_DF 0x4000
#define IP_FLAG_MF 0x2000
#define IP_FRAG_OFFSET 0x1fff

static uint16_t next_id;

void ip_input(const uint8_t *eth_src, const uint8_t *p, size_t len)
{
    if (len < IP_HLEN || p[0] >> 4 != 4) goto drop;
    size_t ihl = (size_t)(p[0] & 15) * 4, total = get_be16(p + 2);
    if (ihl < IP_HLEN || total < ihl || total > len) goto drop;
    if (inet_fold(inet_sum(p, ihl, 0)) != 0) { netif0.stats.rx_bad_csum++; goto drop; }
    if (get_be16(p + 6) & (IP_FLAG_MF | IP_FRAG_OFFSET)) goto drop;   /* no reassembly */
    uint32_t src = get_be32(p + 12), dst = get_be32(p + 16);
    uint32_t bcast = netif0.ip | ~netif0.netmask;
    if (dst != netif0.ip && dst != 0xffffffffu && dst != bcast) goto drop;
    /* Glean the sender's MAC so that replies need no ARP round trip. */
    if (netif0.netmask && (src & netif0.netmask) == (netif0.ip & netif0.netmask)) arp_learn(src, eth_src);
    switch (p[9]) {
    case IP_PROTO_ICMP: icmp_input(eth_src, src, p[8], p + ihl, total - ihl); return;
    case IP_PROTO_UDP: udp_input(eth_src, src, dst, p + ihl, total - ihl); return;
    default: break;
    }
drop:
    netif0.stats.rx_dropped++;
}

int ip_output(uint8_t *frame, uint32_t dst, const uint8_t *dst_mac, uint8_t proto, size_t len)
{
    uint8_t mac[ETH_ALEN];
    if (!netif0.ip) return -XEN_EINVAL;            /* no address configured */
    if (len + IP_HLEN > ETH_MTU) return -XEN_E2BIG;   /* we do not fragment */
    if (!dst_mac) {
        int rc = arp_resolve(dst, mac, 3000000000ull);
        if (rc < 0) return rc;
        dst_mac = mac;
    }
    uint8_t *h = frame + ETH_HLEN;
    h[0] = 0x45;
    h[1] = 0;
    put_be16(h + 2, (uint16_t)(IP_HLEN + len));
    put_be16(h + 4, next_id++);
    put_be16(h + 6, IP_FLAG_DF);
    h[8] = IP_DEFAULT_TTL;
    h[9] = proto;
    put_be16(h + 10, 0);
    put_be32(h + 12, netif0.ip);
    put_be32(h + 16, dst);
    put_be16(h + 10, inet_fold(inet_sum(h, IP_HLEN, 0)));
    return eth_output(frame, dst_mac, ETHERTYPE_IPV4, IP_HLEN + len);
}
