/*
 * Event channels of a PV guest on xenbox RISC-V, the 2-level ABI as Linux's
 * drivers/xen/events/events_2l.c uses it: shared_info placed in our RAM
 * (XENMEM_add_to_physmap, as arch/arm/xen/enlighten.c does), an upcall on the
 * supervisor software interrupt, a handler per port.
 */
#ifndef PV_EVENTS_H
#define PV_EVENTS_H

#include "xen.h"

typedef void (*evtchn_handler_t)(evtchn_port_t port);

extern struct shared_info *HYPERVISOR_shared_info;

/* Map shared_info, enable the upcall interrupt (sie.SSIE and sstatus.SIE). */
void events_init(void);
/* Call `h` (in the upcall, interrupts off) whenever `port` fires. */
void evtchn_set_handler(evtchn_port_t port, evtchn_handler_t h);

long evtchn_op(unsigned cmd, void *arg);
long evtchn_bind_virq(uint32_t virq, uint32_t vcpu, evtchn_port_t *port);
long evtchn_alloc_unbound(domid_t remote, evtchn_port_t *port);
long evtchn_send(evtchn_port_t port);
long set_timer_op(uint64_t deadline_ns);
/* Guest system time, ns (rdtime × 100: the time base is 10 MHz). */
uint64_t xen_system_time(void);

/* Sleep in WFI until done() holds, without losing an event that lands before the WFI. */
void wait_until(int (*done)(void));
void xen_evtchn_do_upcall(void);

#endif
