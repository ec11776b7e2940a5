/*
 * netfront: the PV kernel's network frontend (Xen io/netif.h over xenbus,
 * copy mode).  The rx ring is kept stocked with granted pages that the
 * backend copies frames into; a frame to send is copied into a granted tx
 * page (one slot, frames up to a page).  Received frames go to the IP
 * stack (net_input) from netfront_poll(), never from the upcall.  Like
 * blkfront, it connects again when its backend restarts; frames in flight
 * then are lost, as on a real link.
 */
#ifndef PVKERNEL_NETFRONT_H
#define PVKERNEL_NETFRONT_H

#include <stddef.h>
#include <stdint.h>
#include "netif.h"

#define NETFRONT_MAX_DEVS 2
#define NETFRONT_RX_BUFS 64    /* pages posted on the rx ring */
#define NETFRONT_TX_BUFS 32    /* frames in flight on the tx ring */

struct netfront;

struct netfront_stats {
    uint64_t rx_frames, rx_bytes, rx_errors, tx_frames, tx_bytes, tx_errors;
    uint32_t reconnects;
};

int netfront_probe(void);                 /* number of vifs connected; the first is attached to the IP stack */
int netfront_count(void);
struct netfront *netfront_get(int index);
void netfront_mac(struct netfront *d, uint8_t mac[6]);
const char *netfront_name(struct netfront *d);          /* "vif0" */
const char *netfront_backend(struct netfront *d);
int netfront_connected(struct netfront *d);
void netfront_get_stats(struct netfront *d, struct netfront_stats *st);
/* Copy one frame into a tx page and send it; 0 or -errno. */
int netfront_xmit(struct netfront *d, const void *frame, size_t len);
/* Deliver received frames, reap tx completions, notice a lost backend; 1 if anything happened. */
int netfront_poll(struct netfront *d);
/* Sleep until an event or `deadline_ns`, having asked the backend for an event on the next frame. */
void netfront_wait(struct netfront *d, uint64_t deadline_ns);

#endif
