/*
 * Event channels, the 2-level ABI (docs/pv-guest-abi.md §1-3).
 *
 * Setup as Xen-on-Arm guests do (Linux arch/arm/xen/enlighten.c
 * xen_guest_init): XENMEM_add_to_physmap(XENMAPSPACE_shared_info) places
 * shared_info in a page of our RAM; every port starts masked (Linux
 * xen_evtchn_mask_all) and is unmasked when a handler is bound.
 *
 * The upcall is the supervisor software interrupt; it runs Linux's
 * __xen_evtchn_do_upcall + evtchn_2l_handle_events: clear sip.SSIP, then
 * loop { upcall_pending = 0; sel = xchg(pending_sel, 0); for each selected
 * word, each pending & ~mask bit is cleared, then its handler runs } while
 * upcall_pending.
 */
#include <string.h>
#include "core.h"
#include "hypercall.h"

static uint8_t shared_info_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static struct shared_info *const s = (struct shared_info *)shared_info_page;

struct handler { evtchn_handler_t fn; void *arg; unsigned long count; };
static struct handler handlers[EVTCHN_2L_NR_CHANNELS];

volatile unsigned long events_generation;

int evtchn_alloc_unbound(domid_t remote, evtchn_port_t *port)
{
    struct evtchn_alloc_unbound op = { .dom = DOMID_SELF, .remote_dom = remote };
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &op);
    if (rc == 0) *port = op.port;
    return (int)rc;
}

static long port_op(unsigned cmd, evtchn_port_t port)
{
    struct evtchn_port_op op = { .port = port };
    return HYPERVISOR_event_channel_op(cmd, &op);
}

int evtchn_notify(evtchn_port_t port) { return (int)port_op(EVTCHNOP_send, port); }

static void mask(evtchn_port_t port)
{
    __atomic_fetch_or(&s->evtchn_mask[port / 64], 1UL << (port % 64), __ATOMIC_SEQ_CST);
}

void evtchn_bind_handler(evtchn_port_t port, evtchn_handler_t h, void *arg)
{
    if (port >= EVTCHN_2L_NR_CHANNELS) panic("evtchn_bind_handler: port %u out of range", port);
    unsigned long irq = irq_save();
    handlers[port] = (struct handler){ h, arg, 0 };
    irq_restore(irq);
    /* EVTCHNOP_unmask: clears the mask and, if the port is pending, raises the upcall (evtchn_2l_unmask). */
    port_op(EVTCHNOP_unmask, port);
}

void evtchn_unbind_handler(evtchn_port_t port)
{
    if (port >= EVTCHN_2L_NR_CHANNELS) return;
    mask(port);
    unsigned long irq = irq_save();
    handlers[port] = (struct handler){ NULL, NULL, 0 };
    irq_restore(irq);
}

int evtchn_close(evtchn_port_t port)
{
    evtchn_unbind_handler(port);
    return (int)port_op(EVTCHNOP_close, port);
}

int evtchn_bind_virq(uint32_t virq, evtchn_port_t *port)
{
    struct evtchn_bind_virq op = { .virq = virq, .vcpu = 0 };
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, &op);
    if (rc == 0) *port = op.port;
    return (int)rc;
}

/* The shell's `interrupts`: every port that has fired or has a handler, like /proc/interrupts. */
void evtchn_show(void)
{
    printk("port      events  handler\n");
    for (evtchn_port_t p = 0; p < EVTCHN_2L_NR_CHANNELS; p++) {
        if (!handlers[p].fn && !handlers[p].count) continue;
        printk("%4u %11lu  %p%s\n", p, handlers[p].count, (void *)handlers[p].fn,
               __atomic_load_n(&s->evtchn_mask[p / 64], __ATOMIC_RELAXED) & (1UL << (p % 64)) ? " (masked)" : "");
    }
}

static unsigned lowest_bit(uint64_t x) { return (unsigned)__builtin_ctzl(x); }

static void handle_events(struct vcpu_info *v)
{
    xen_ulong_t sel = __atomic_exchange_n(&v->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel) {
        unsigned w = lowest_bit(sel);
        sel &= sel - 1;
        for (;;) {
            xen_ulong_t bits = __atomic_load_n(&s->evtchn_pending[w], __ATOMIC_SEQ_CST) & ~__atomic_load_n(&s->evtchn_mask[w], __ATOMIC_SEQ_CST);
            if (!bits) break;
            unsigned b = lowest_bit(bits);
            evtchn_port_t port = w * 64 + b;
            __atomic_fetch_and(&s->evtchn_pending[w], ~(1UL << b), __ATOMIC_SEQ_CST);   /* clear_evtchn() */
            events_generation++;
            handlers[port].count++;
            struct handler h = handlers[port];
            if (h.fn) h.fn(port, h.arg);
        }
    }
}

/* The upcall: the trap vector calls it for scause = interrupt 1 (SSIP), interrupts off. */
void xen_evtchn_do_upcall(void)
{
    struct vcpu_info *v = &s->vcpu_info[0];
    asm volatile("csrc sip, %0" ::"r"(SIP_SSIP));
    do {
        __atomic_store_n(&v->evtchn_upcall_pending, 0, __ATOMIC_SEQ_CST);
        handle_events(v);
    } while (__atomic_load_n(&v->evtchn_upcall_pending, __ATOMIC_SEQ_CST));
}

void events_init(void)
{
    memset(s->evtchn_mask, 0xff, sizeof s->evtchn_mask);
    struct xen_add_to_physmap xatp = {
        .domid = DOMID_SELF, .space = XENMAPSPACE_shared_info, .idx = 0,
        .gpfn = virt_to_gfn(shared_info_page),
    };
    long rc = HYPERVISOR_memory_op(XENMEM_add_to_physmap, &xatp);
    if (rc) panic("events: XENMEM_add_to_physmap(shared_info) failed: %ld", rc);
    /* What was pending before is carried over, and so are the hypervisor's mask bits: mask all again. */
    for (unsigned w = 0; w < 64; w++) __atomic_store_n(&s->evtchn_mask[w], ~0UL, __ATOMIC_SEQ_CST);
    asm volatile("csrs sie, %0" ::"r"(SIE_SSIE));
    irq_enable();
}
