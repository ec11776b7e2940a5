/*
 * The network interface and Ethernet II framing for the PV kernel's IPv4
 * stack (net.h): one interface (netif0), attached by netfront with its
 * transmit and poll functions; received frames are dispatched by
 * EtherType to ARP and IPv4.  Also the RFC 1071 checksum and address text.
 */
#include "kernel.h"
#include "klib.h"
#include "net.h"

struct net_if netif0;
int net_input_depth;
const uint8_t eth_broadcast[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

void net_attach(const uint8_t mac[ETH_ALEN], net_xmit_fn xmit, net_poll_fn poll)
{
    memcpy(netif0.mac, mac, ETH_ALEN);
    netif0.xmit = xmit;
    netif0.poll = poll;
    netif0.up = 1;
}

void net_set_ip(uint32_t ip, uint32_t netmask)
{
    netif0.ip = ip;
    netif0.netmask = netmask;
}

void net_poll(void)
{
    if (netif0.poll && !net_input_depth) netif0.poll();
}

void net_input(const uint8_t *frame, size_t len)
{
    if (len < ETH_HLEN) { netif0.stats.rx_dropped++; return; }
    netif0.stats.rx_packets++;
    netif0.stats.rx_bytes += len;
    const uint8_t *dst = frame, *src = frame + ETH_ALEN;
    int for_us = memcmp(dst, netif0.mac, ETH_ALEN) == 0 || memcmp(dst, eth_broadcast, ETH_ALEN) == 0;
    if (!for_us) { netif0.stats.rx_dropped++; return; }
    net_input_depth++;
    switch (get_be16(frame + 12)) {
    case ETHERTYPE_ARP: arp_input(frame + ETH_HLEN, len - ETH_HLEN); break;
    case ETHERTYPE_IPV4: ip_input(src, frame + ETH_HLEN, len - ETH_HLEN); break;
    default: netif0.stats.rx_dropped++; break;
    }
    net_input_depth--;
}

int eth_output(uint8_t *frame, const uint8_t dst[ETH_ALEN], uint16_t type, size_t payload_len)
{
    if (!netif0.xmit) return -XEN_ENODEV;
    if (payload_len > ETH_MTU) return -XEN_E2BIG;
    memcpy(frame, dst, ETH_ALEN);
    memcpy(frame + ETH_ALEN, netif0.mac, ETH_ALEN);
    put_be16(frame + 12, type);
    size_t len = ETH_HLEN + payload_len;
    /* Pad runt frames to the Ethernet minimum of 60 bytes (without FCS). */
    if (len < 60) { memset(frame + len, 0, 60 - len); len = 60; }
    int rc = netif0.xmit(frame, len);
    if (rc < 0) { netif0.stats.tx_errors++; return rc; }
    netif0.stats.tx_packets++;
    netif0.stats.tx_bytes += len;
    return 0;
}

uint32_t inet_sum(const void *data, size_t len, uint32_t sum)
{
    const uint8_t *p = data;
    for (; len > 1; p += 2, len -= 2) sum += (uint32_t)(p[0] << 8 | p[1]);
    if (len) sum += (uint32_t)p[0] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

uint16_t inet_fold(uint32_t sum)
{
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

int ip_parse(const char *s, uint32_t *ip)
{
    uint32_t v = 0;
    for (int part = 0; part < 4; part++) {
        unsigned n = 0, digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 4) { n = n * 10 + (unsigned)(*s++ - '0'); digits++; }
        if (!digits || n > 255) return -XEN_EINVAL;
        v = v << 8 | n;
        if (part < 3 && *s++ != '.') return -XEN_EINVAL;
    }
    if (*s) return -XEN_EINVAL;
    *ip = v;
    return 0;
}

char *ip_format(uint32_t ip, char *buf)
{
    snprintk(buf, 16, "%u.%u.%u.%u", (unsigned)(ip >> 24), (unsigned)(ip >> 16 & 255),
             (unsigned)(ip >> 8 & 255), (unsigned)(ip & 255));
    return buf;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int mac_parse(const char *s, uint8_t mac[ETH_ALEN])
{
    for (int i = 0; i < ETH_ALEN; i++) {
        int hi = hexval(s[0]), lo = hexval(s[1]);
        if (hi < 0 || lo < 0) return -XEN_EINVAL;
        mac[i] = (uint8_t)(hi << 4 | lo);
        s += 2;
        if (i < ETH_ALEN - 1 && *s++ != ':') return -XEN_EINVAL;
    }
    return *s ? -XEN_EINVAL : 0;
}

char *mac_format(const uint8_t mac[ETH_ALEN], char *buf)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < ETH_ALEN; i++) {
        buf[i * 3] = hex[mac[i] >> 4];
        buf[i * 3 + 1] = hex[mac[i] & 15];
        buf[i * 3 + 2] = i < ETH_ALEN - 1 ? ':' : '\0';
    }
    return buf;
}
