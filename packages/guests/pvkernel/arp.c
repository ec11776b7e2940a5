/*
 * ARP for IPv4 over Ethernet (RFC 826): answer requests for our address,
 * learn senders, resolve next hops with a small cache (ARP_CACHE_SIZE
 * entries, least recently refreshed replaced).
 */
#include "kernel.h"
#include "klib.h"
#include "net.h"

#define ARP_LEN 28
#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY 2
#define ARP_RETRY_NS 500000000ull

struct arp_entry {
    uint32_t ip;
    uint8_t mac[ETH_ALEN];
    uint64_t updated_ns;
};

static struct arp_entry cache[ARP_CACHE_SIZE];
static uint8_t arp_frame[ETH_FRAME_MAX];

void arp_flush(void)
{
    memset(cache, 0, sizeof(cache));
}

void arp_learn(uint32_t ip, const uint8_t mac[ETH_ALEN])
{
    if (!ip || ip == netif0.ip || (mac[0] & 1)) return;   /* no multicast/broadcast sources */
    struct arp_entry *slot = &cache[0];
    for (int i = 0; i < ARP_CACHE_SIZE; i++) {
        if (cache[i].ip == ip) { slot = &cache[i]; break; }
        if (cache[i].updated_ns < slot->updated_ns) slot = &cache[i];
    }
    slot->ip = ip;
    memcpy(slot->mac, mac, ETH_ALEN);
    slot->updated_ns = now_ns() | 1;   /* never 0: 0 marks a free slot */
}

const uint8_t *arp_lookup(uint32_t ip)
{
    uint32_t bcast = netif0.ip | ~netif0.netmask;
    if (ip == 0xffffffffu || (netif0.netmask && ip == bcast)) return eth_broadcast;
    for (int i = 0; i < ARP_CACHE_SIZE; i++)
        if (cache[i].updated_ns && cache[i].ip == ip) return cache[i].mac;
    return NULL;
}

static int arp_send(uint16_t op, const uint8_t *eth_dst, const uint8_t *tha, uint32_t tpa)
{
    uint8_t *a = arp_frame + ETH_HLEN;
    put_be16(a, 1);                 /* htype: Ethernet */
    put_be16(a + 2, ETHERTYPE_IPV4);
    a[4] = ETH_ALEN;
    a[5] = 4;
    put_be16(a + 6, op);
    memcpy(a + 8, netif0.mac, ETH_ALEN);
    put_be32(a + 14, netif0.ip);
    memcpy(a + 18, tha, ETH_ALEN);
    put_be32(a + 24, tpa);
    return eth_output(arp_frame, eth_dst, ETHERTYPE_ARP, ARP_LEN);
}

int arp_send_request(uint32_t ip)
{
    static const uint8_t zero[ETH_ALEN];
    return arp_send(ARP_OP_REQUEST, eth_broadcast, zero, ip);
}

void arp_input(const uint8_t *a, size_t len)
{
    if (len < ARP_LEN || get_be16(a) != 1 || get_be16(a + 2) != ETHERTYPE_IPV4 || a[4] != ETH_ALEN || a[5] != 4) {
        netif0.stats.rx_dropped++;
        return;
    }
    uint16_t op = get_be16(a + 6);
    const uint8_t *sha = a + 8;
    uint32_t spa = get_be32(a + 14), tpa = get_be32(a + 24);
    int for_us = netif0.ip && tpa == netif0.ip;
    /* RFC 826: update an existing entry for the sender; add one if the request is for us. */
    if (for_us || arp_lookup(spa) || op == ARP_OP_REPLY) arp_learn(spa, sha);
    if (op == ARP_OP_REQUEST) {
        netif0.stats.arp_requests_in++;
        if (for_us) arp_send(ARP_OP_REPLY, sha, sha, spa);
    } else if (op == ARP_OP_REPLY) {
        netif0.stats.arp_replies_in++;
    }
}

int arp_resolve(uint32_t ip, uint8_t mac[ETH_ALEN], uint64_t timeout_ns)
{
    uint64_t deadline = now_ns() + timeout_ns, next_ask = 0;
    for (;;) {
        const uint8_t *m = arp_lookup(ip);
        if (m) { memcpy(mac, m, ETH_ALEN); return 0; }
        uint64_t t = now_ns();
        if (t >= deadline) return -XEN_ETIMEDOUT;
        if (t >= next_ask) {
            int rc = arp_send_request(ip);
            if (rc < 0) return rc;
            next_ask = t + ARP_RETRY_NS;
        }
        /* Inside net_input (a reply from a handler) we cannot wait for the answer. */
        if (net_input_depth) return -XEN_EAGAIN;
        net_poll();
        if (!arp_lookup(ip)) kernel_wait(next_ask < deadline ? next_ask : deadline);
    }
}

void arp_show(void)
{
    char ipb[16], macb[18];
    for (int i = 0; i < ARP_CACHE_SIZE; i++)
        if (cache[i].updated_ns)
            printk("%s at %s\n", ip_format(cache[i].ip, ipb), mac_format(cache[i].mac, macb));
}
