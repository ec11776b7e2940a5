/*
 * The PV kernel's small IPv4 stack: Ethernet II, ARP (RFC 826), IPv4
 * (RFC 791, no fragments), ICMP echo (RFC 792) and UDP (RFC 768), on one
 * interface (the first netfront).  Single-threaded: frames come in through
 * net_input() from the main loop, never from the upcall.
 *
 * Addresses are kept in host order (uint32_t 10.0.0.1 = 0x0a000001);
 * everything on the wire is big-endian, converted at the edges.
 */
#ifndef PVKERNEL_NET_H
#define PVKERNEL_NET_H

#include <stddef.h>
#include <stdint.h>

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_MTU 1500
#define ETH_FRAME_MAX (ETH_HLEN + ETH_MTU)
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806

#define IP_PROTO_ICMP 1
#define IP_PROTO_UDP 17
#define IP_HLEN 20
#define UDP_HLEN 8
#define ICMP_HLEN 8

static inline uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* ---- the interface (net.c) ---- */
typedef int (*net_xmit_fn)(const void *frame, size_t len);   /* 0 or -errno */
typedef void (*net_poll_fn)(void);                             /* drive the device once */

struct net_stats {
    uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
    uint64_t rx_dropped, tx_errors;
    uint64_t rx_bad_csum, arp_requests_in, arp_replies_in, icmp_echo_in, udp_in;
};

struct net_if {
    uint8_t mac[ETH_ALEN];
    uint32_t ip, netmask;
    int up;
    net_xmit_fn xmit;
    net_poll_fn poll;
    struct net_stats stats;
};

extern struct net_if netif0;
extern int net_input_depth;    /* > 0 while a received frame is being handled */
extern const uint8_t eth_broadcast[ETH_ALEN];

void net_attach(const uint8_t mac[ETH_ALEN], net_xmit_fn xmit, net_poll_fn poll);
void net_set_ip(uint32_t ip, uint32_t netmask);
/* One received Ethernet frame (any alignment; the stack copies what it keeps). */
void net_input(const uint8_t *frame, size_t len);
/* Build an Ethernet header in front of `payload` (which starts at frame + ETH_HLEN) and send. */
int eth_output(uint8_t *frame, const uint8_t dst[ETH_ALEN], uint16_t type, size_t payload_len);
/* Poll the device once (0 if no device). */
void net_poll(void);

/* RFC 1071 ones'-complement sum of `len` bytes, folded, not inverted; `sum` carries a partial sum. */
uint32_t inet_sum(const void *data, size_t len, uint32_t sum);
uint16_t inet_fold(uint32_t sum);   /* fold and invert: the checksum field's value */
int ip_parse(const char *s, uint32_t *ip);   /* "a.b.c.d" -> 0, else -XEN_EINVAL */
/* "a.b.c.d" into buf (>= 16 bytes); returns buf. */
char *ip_format(uint32_t ip, char *buf);
/* "xx:xx:xx:xx:xx:xx" -> 0, else -XEN_EINVAL */
int mac_parse(const char *s, uint8_t mac[ETH_ALEN]);
char *mac_format(const uint8_t mac[ETH_ALEN], char *buf);   /* buf >= 18 bytes */

/* ---- ARP (arp.c) ---- */
#define ARP_CACHE_SIZE 16
void arp_input(const uint8_t *pkt, size_t len);
/* Learn ip -> mac (from ARP, or gleaned from a received IPv4 frame). */
void arp_learn(uint32_t ip, const uint8_t mac[ETH_ALEN]);
/* Cached MAC of ip, or NULL. */
const uint8_t *arp_lookup(uint32_t ip);
int arp_send_request(uint32_t ip);
/* Look up, or ask (retrying every 500 ms) until `timeout_ns`: 0 with mac filled, or -XEN_ETIMEDOUT. */
int arp_resolve(uint32_t ip, uint8_t mac[ETH_ALEN], uint64_t timeout_ns);
void arp_flush(void);
void arp_show(void);

/* ---- IPv4 (ip.c) ---- */
void ip_input(const uint8_t *eth_src, const uint8_t *pkt, size_t len);
/*
 * Send an IPv4 packet whose payload (len bytes) is already at
 * frame + ETH_HLEN + IP_HLEN, to `dst` via `dst_mac` (NULL: resolve with ARP).
 */
int ip_output(uint8_t *frame, uint32_t dst, const uint8_t *dst_mac, uint8_t proto, size_t len);

/* ---- ICMP (icmp.c) ---- */
struct icmp_echo_reply {
    uint32_t from;
    uint16_t id, seq;
    uint8_t ttl;
    size_t len;          /* ICMP bytes (header + payload) */
    uint64_t sent_ns;    /* timestamp carried in the payload */
    uint64_t recv_ns;
};
typedef void (*icmp_reply_handler_t)(const struct icmp_echo_reply *r, void *arg);
void icmp_input(const uint8_t *eth_src, uint32_t src, uint8_t ttl, const uint8_t *pkt, size_t len);
/* Echo request with `payload_len` bytes, the first 8 the send time (as Linux ping). */
int icmp_send_echo(uint32_t dst, uint16_t id, uint16_t seq, size_t payload_len);
void icmp_set_reply_handler(icmp_reply_handler_t h, void *arg);

/* ---- UDP (udp.c) ---- */
typedef void (*udp_handler_t)(uint32_t src, uint16_t sport, uint16_t dport,
                              const uint8_t *data, size_t len, void *arg);
#define UDP_MAX_BINDINGS 8
void udp_input(const uint8_t *eth_src, uint32_t src, uint32_t dst, const uint8_t *pkt, size_t len);
int udp_bind(uint16_t port, udp_handler_t h, void *arg);     /* 0, -XEN_EEXIST, -XEN_ENOSPC */
void udp_unbind(uint16_t port);
int udp_send(uint32_t dst, uint16_t sport, uint16_t dport, const void *data, size_t len);

#endif
