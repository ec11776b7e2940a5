/*
 * The network interface between netfront and netback: Xen's public
 * xen/include/public/io/netif.h (see xen-protocols.md §4).  All fields are
 * little and 2-byte aligned; sizes and offsets are checked at compile time.
 */
#ifndef PVKERNEL_NETIF_H
#define PVKERNEL_NETIF_H

#include <stddef.h>
#include <stdint.h>
#include "ring.h"

typedef uint32_t netif_grant_ref_t;

/* Tx request flags (NETTXF_*). */
#define NETTXF_csum_blank      (1u << 0)
#define NETTXF_data_validated  (1u << 1)
#define NETTXF_more_data       (1u << 2)
#define NETTXF_extra_info      (1u << 3)

/* Rx response flags (NETRXF_*). */
#define NETRXF_data_validated  (1u << 0)
#define NETRXF_csum_blank      (1u << 1)
#define NETRXF_more_data       (1u << 2)
#define NETRXF_extra_info      (1u << 3)
#define NETRXF_gso_prefix      (1u << 4)

#define NETIF_RSP_DROPPED  (-2)
#define NETIF_RSP_ERROR    (-1)
#define NETIF_RSP_OKAY     0
#define NETIF_RSP_NULL     1   /* an extra-info slot's response */

#define XEN_NETIF_MAX_TX_SIZE 0xFFFF
#define XEN_NETIF_NR_SLOTS_MIN 18

#define XEN_NETIF_EXTRA_TYPE_NONE      0
#define XEN_NETIF_EXTRA_TYPE_GSO       1
#define XEN_NETIF_EXTRA_TYPE_MCAST_ADD 2
#define XEN_NETIF_EXTRA_TYPE_MCAST_DEL 3
#define XEN_NETIF_EXTRA_TYPE_HASH      4
#define XEN_NETIF_EXTRA_FLAG_MORE      (1u << 0)

#define XEN_NETIF_GSO_TYPE_NONE   0
#define XEN_NETIF_GSO_TYPE_TCPV4  1
#define XEN_NETIF_GSO_TYPE_TCPV6  2

struct netif_tx_request {
    netif_grant_ref_t gref;
    uint16_t offset;      /* within the granted page */
    uint16_t flags;       /* NETTXF_* */
    uint16_t id;          /* echoed in the response */
    uint16_t size;        /* first slot: the whole packet; later slots: this fragment */
};

/* Overlays a request slot when the previous slot had *_extra_info. */
struct netif_extra_info {
    uint8_t type;
    uint8_t flags;
    union {
        struct { uint16_t size; uint8_t type; uint8_t pad; uint16_t features; } gso;
        struct { uint8_t addr[6]; } mcast;
        struct { uint8_t type; uint8_t algorithm; uint8_t value[4]; } hash;
        uint16_t pad[3];
    } u;
};

struct netif_tx_response {
    uint16_t id;
    int16_t status;       /* NETIF_RSP_* */
};

struct netif_rx_request {
    uint16_t id;
    uint16_t pad;
    netif_grant_ref_t gref;   /* a page granted writable to the backend */
};

struct netif_rx_response {
    uint16_t id;
    uint16_t offset;      /* where the data starts in the page */
    uint16_t flags;       /* NETRXF_* */
    int16_t status;       /* >= 0: bytes in this slot; < 0: NETIF_RSP_* */
};

DEFINE_RING_TYPES(netif_tx, struct netif_tx_request, struct netif_tx_response);
DEFINE_RING_TYPES(netif_rx, struct netif_rx_request, struct netif_rx_response);

#define NET_TX_RING_SIZE __CONST_RING_SIZE(netif_tx, 4096)
#define NET_RX_RING_SIZE __CONST_RING_SIZE(netif_rx, 4096)

_Static_assert(sizeof(struct netif_tx_request) == 12, "tx request is 12 bytes");
_Static_assert(offsetof(struct netif_tx_request, offset) == 4, "tx offset @4");
_Static_assert(offsetof(struct netif_tx_request, flags) == 6, "tx flags @6");
_Static_assert(offsetof(struct netif_tx_request, id) == 8, "tx id @8");
_Static_assert(offsetof(struct netif_tx_request, size) == 10, "tx size @10");
_Static_assert(sizeof(struct netif_extra_info) == 8, "extra info is 8 bytes");
_Static_assert(offsetof(struct netif_extra_info, u.gso.size) == 2, "gso size @2");
_Static_assert(offsetof(struct netif_extra_info, u.gso.type) == 4, "gso type @4");
_Static_assert(offsetof(struct netif_extra_info, u.gso.features) == 6, "gso features @6");
_Static_assert(sizeof(struct netif_tx_response) == 4, "tx response is 4 bytes");
_Static_assert(offsetof(struct netif_tx_response, status) == 2, "tx status @2");
_Static_assert(sizeof(struct netif_rx_request) == 8, "rx request is 8 bytes");
_Static_assert(offsetof(struct netif_rx_request, gref) == 4, "rx gref @4");
_Static_assert(sizeof(struct netif_rx_response) == 8, "rx response is 8 bytes");
_Static_assert(offsetof(struct netif_rx_response, offset) == 2, "rx offset @2");
_Static_assert(offsetof(struct netif_rx_response, flags) == 4, "rx flags @4");
_Static_assert(offsetof(struct netif_rx_response, status) == 6, "rx status @6");
_Static_assert(offsetof(struct netif_tx_sring, ring) == 64, "tx entries at 64");
_Static_assert(offsetof(struct netif_rx_sring, ring) == 64, "rx entries at 64");
_Static_assert(NET_TX_RING_SIZE == 256, "a one-page tx ring has 256 entries");
_Static_assert(NET_RX_RING_SIZE == 256, "a one-page rx ring has 256 entries");

#endif
