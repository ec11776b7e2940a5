/*
 * What the PV test guests add to Xen's public interface (include/xen-public.h,
 * shared with the PV kernel): the page size and the interrupt that carries
 * the event-channel upcall.  docs/pv-guest-abi.md describes the protocol.
 */
#ifndef PV_XEN_H
#define PV_XEN_H

#include "../include/xen-public.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE 4096
#define XEN_UPCALL_IRQ 1 /* SSIP: @xenbox/abi XEN_UPCALL_IRQ */

#endif
