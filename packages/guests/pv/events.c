/*
 * 2-level event channels for a xenbox RISC-V PV guest.
 *
 * Setup, as Xen-on-Arm guests do (Linux arch/arm/xen/enlighten.c
 * xen_guest_init): XENMEM_add_to_physmap(XENMAPSPACE_shared_info) puts the
 * shared_info page at a page of our RAM; the hypervisor then sets pending
 * bits there with atomics and raises the supervisor software interrupt.
 *
 * The upcall (Linux drivers/xen/events/events_base.c __xen_evtchn_do_upcall
 * and events_2l.c evtchn_2l_handle_events): clear sip.SSIP, then
 * loop { upcall_pending = 0; sel = xchg(pending_sel, 0); for each word in
 * sel, take pending & ~mask, clearing each bit before its handler runs }
 * while upcall_pending.
 */
#include "../pvh/guest.h"
#include "events.h"

void guest_trap(ulong scause, ulong sepc, ulong stval);

#define SIP_SSIP (1UL << 1)
#define SIE_SSIE (1UL << 1)
#define SSTATUS_SIE (1UL << 1)
#define NR_PORTS 4096

static uint8_t shared_info_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
struct shared_info *HYPERVISOR_shared_info;
static evtchn_handler_t handlers[NR_PORTS];

long evtchn_op(unsigned cmd, void *arg) { return xen_hypercall(__HYPERVISOR_event_channel_op, cmd, (ulong)arg, 0); }

long set_timer_op(uint64_t deadline_ns) { return xen_hypercall(__HYPERVISOR_set_timer_op, deadline_ns, 0, 0); }

uint64_t xen_system_time(void) { return rdtime() * 100; }

long evtchn_bind_virq(uint32_t virq, uint32_t vcpu, evtchn_port_t *port)
{
    struct evtchn_bind_virq op = { .virq = virq, .vcpu = vcpu };
    long rc = evtchn_op(EVTCHNOP_bind_virq, &op);
    if (rc == 0) *port = op.port;
    return rc;
}

long evtchn_alloc_unbound(domid_t remote, evtchn_port_t *port)
{
    struct evtchn_alloc_unbound op = { .dom = DOMID_SELF, .remote_dom = remote };
    long rc = evtchn_op(EVTCHNOP_alloc_unbound, &op);
    if (rc == 0) *port = op.port;
    return rc;
}

long evtchn_send(evtchn_port_t port)
{
    struct evtchn_send op = { .port = port };
    return evtchn_op(EVTCHNOP_send, &op);
}

void evtchn_set_handler(evtchn_port_t port, evtchn_handler_t h)
{
    if (port < NR_PORTS) handlers[port] = h;
}

/* Lowest set bit of a nonzero word (no Zbb, and libgcc's __ctzdi2 is built for another ABI). */
static unsigned lowest_bit(xen_ulong_t x)
{
    unsigned n = 0;
    while (!(x & 1)) { x >>= 1; n++; }
    return n;
}

/* evtchn_2l_handle_events(): every pending, unmasked port of the selected words. */
static void handle_events(struct vcpu_info *v)
{
    struct shared_info *s = HYPERVISOR_shared_info;
    xen_ulong_t sel = __atomic_exchange_n(&v->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel) {
        unsigned w = lowest_bit(sel);
        sel &= sel - 1;
        for (;;) {
            xen_ulong_t bits = __atomic_load_n(&s->evtchn_pending[w], __ATOMIC_SEQ_CST) & ~__atomic_load_n(&s->evtchn_mask[w], __ATOMIC_SEQ_CST);
            if (!bits) break;
            unsigned b = lowest_bit(bits);
            evtchn_port_t port = w * 64 + b;
            __atomic_fetch_and(&s->evtchn_pending[w], ~(1UL << b), __ATOMIC_SEQ_CST); /* clear_evtchn() */
            if (handlers[port]) handlers[port](port);
        }
    }
}

/* The upcall, called by the trap vector for scause = interrupt 1 (SSIP). */
void xen_evtchn_do_upcall(void)
{
    struct vcpu_info *v = &HYPERVISOR_shared_info->vcpu_info[0];
    asm volatile("csrc sip, %0" ::"r"(SIP_SSIP));
    do {
        __atomic_store_n(&v->evtchn_upcall_pending, 0, __ATOMIC_SEQ_CST);
        handle_events(v);
    } while (__atomic_load_n(&v->evtchn_upcall_pending, __ATOMIC_SEQ_CST));
}

void events_init(void)
{
    struct xen_add_to_physmap xatp = {
        .domid = DOMID_SELF,
        .space = XENMAPSPACE_shared_info,
        .idx = 0,
        .gpfn = (ulong)shared_info_page >> PAGE_SHIFT,
    };
    long rc = xen_hypercall(__HYPERVISOR_memory_op, XENMEM_add_to_physmap, (ulong)&xatp, 0);
    if (rc) {
        puts_("events: add_to_physmap(shared_info) failed ");
        putdec(-rc);
        puts_("\n");
        guest_shutdown(SHUTDOWN_crash);
    }
    HYPERVISOR_shared_info = (struct shared_info *)shared_info_page;
    asm volatile("csrs sie, %0" ::"r"(SIE_SSIE));
    asm volatile("csrs sstatus, %0" ::"r"(SSTATUS_SIE));
}

/*
 * Sleep until done() holds.  done() is checked with interrupts off, and WFI
 * still ends when SSIP is pending (WFI ignores sstatus.SIE); turning SIE back
 * on then takes the upcall.  So an event that lands between the check and
 * the WFI is never slept through.
 */
void wait_until(int (*done)(void))
{
    for (;;) {
        asm volatile("csrc sstatus, %0" ::"r"(SSTATUS_SIE));
        if (done()) break;
        asm volatile("wfi");
        asm volatile("csrs sstatus, %0" ::"r"(SSTATUS_SIE));
    }
    asm volatile("csrs sstatus, %0" ::"r"(SSTATUS_SIE));
}

/* The trap vector's C half for interrupts (scause has the interrupt bit set). */
void pv_interrupt(ulong scause)
{
    if ((scause & 0xff) == XEN_UPCALL_IRQ) {
        xen_evtchn_do_upcall();
        return;
    }
    guest_trap(scause, 0, 0);
}
