/*
 * The console: printk's formatter, and where its bytes go.
 *
 * Early on (and for ever when the toolstack gave us no console ring) bytes go
 * to the SBI debug console.  Once console_ring_init() found the ring
 * (HVM_PARAM_CONSOLE_PFN/EVTCHN, as Linux's hvc_xen.c xen_hvm_console_init
 * finds it), they go to its `out` half (io/console.h: the guest produces
 * out_prod, xenconsoled consumes out_cons) and keyboard input comes from `in`.
 * '\n' goes out as "\r\n", as a tty's ONLCR would: xl console puts the
 * terminal in raw mode.
 */
#include <string.h>
#include "core.h"
#include "hypercall.h"
#include "sbi.h"
#include "format.h"

static struct xencons_interface *cons_ring;
static evtchn_port_t cons_port;
/* Set when the backend stopped draining `out`: write what fits, never wait again until it moves. */
static int cons_stalled;

#define RING_WAIT_NS (500ULL * 1000 * 1000)

/* printk streams through a small buffer flushed to the console. */
static void put_console(struct sink *o, char c)
{
    o->buf[o->pos++ % o->len] = c;
    if (o->pos % o->len == 0) console_write(o->buf, o->len);
}

int printk(const char *fmt, ...)
{
    char chunk[128];
    struct sink o = { put_console, chunk, sizeof chunk, 0 };
    va_list ap;
    va_start(ap, fmt);
    unsigned long irq = irq_save();   /* one message at a time, even from an upcall */
    vformat(&o, fmt, ap);
    if (o.pos % o.len) console_write(chunk, o.pos % o.len);
    irq_restore(irq);
    va_end(ap);
    return (int)o.pos;
}

void panic(const char *fmt, ...)
{
    static int panicking;
    char msg[256];
    va_list ap;
    irq_disable();
    if (panicking++) {   /* a fault while panicking: say no more, just crash */
        sbi_console_write("recursive panic\n", 16);
        kernel_crash();
    }
    va_start(ap, fmt);
    vsnprintk(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printk("Kernel panic - not syncing: %s\n", msg);
    printk("---[ end Kernel panic - not syncing: %s ]---\n", msg);
    kernel_crash();
}

/* ---------------------------------------------------------------- output */

static void notify_backend(void)
{
    evtchn_notify(cons_port);
}

/* Put bytes in `out`; wait (polling: we may be in an upcall) while it is full, unless the backend stalled. */
static void ring_put(const char *s, size_t n)
{
    struct xencons_interface *r = cons_ring;
    uint64_t deadline = 0;
    while (n) {
        uint32_t cons = __atomic_load_n(&r->out_cons, __ATOMIC_ACQUIRE);
        uint32_t prod = r->out_prod;
        uint32_t room = sizeof r->out - (prod - cons);
        if (room == 0) {
            if (cons_stalled) return;   /* drop: nobody reads the console */
            notify_backend();
            if (!deadline) deadline = now_ns() + RING_WAIT_NS;
            if (now_ns() > deadline) { cons_stalled = 1; return; }
            HYPERVISOR_sched_op(SCHEDOP_yield, NULL);
            continue;
        }
        cons_stalled = 0;
        deadline = 0;
        while (room && n) {
            r->out[prod++ & (sizeof r->out - 1)] = *s++;
            room--;
            n--;
        }
        __atomic_store_n(&r->out_prod, prod, __ATOMIC_RELEASE);
    }
}

static void raw_write(const char *s, size_t n)
{
    if (cons_ring) ring_put(s, n);
    else sbi_console_write(s, n);
}

/* Write bytes, '\n' as "\r\n". */
void console_write(const char *s, size_t n)
{
    unsigned long irq = irq_save();
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n') continue;
        if (i > start) raw_write(s + start, i - start);
        raw_write("\r\n", 2);
        start = i + 1;
    }
    if (n > start) raw_write(s + start, n - start);
    if (cons_ring) notify_backend();   /* once a write, not once a line */
    irq_restore(irq);
}

/* ---------------------------------------------------------------- input */

int console_getc(void)
{
    if (!cons_ring) return sbi_console_getc();
    struct xencons_interface *r = cons_ring;
    uint32_t prod = __atomic_load_n(&r->in_prod, __ATOMIC_ACQUIRE);
    uint32_t cons = r->in_cons;
    if (cons == prod) return -1;
    unsigned char c = (unsigned char)r->in[cons & (sizeof r->in - 1)];
    __atomic_store_n(&r->in_cons, cons + 1, __ATOMIC_RELEASE);
    if (cons + 1 == prod) notify_backend();   /* drained: room for more (hvc_xen notifies once a batch too) */
    return c;
}

/* ---------------------------------------------------------------- setup */

void console_early_init(void) { sbi_init(); }

/* Input and output both wake kernel_wait(): the handler itself has nothing to do. */
static void on_console_event(evtchn_port_t port, void *arg) { (void)port; (void)arg; }

int console_ring_init(void)
{
    uint64_t pfn, port;
    long rc = hvm_get_param(HVM_PARAM_CONSOLE_PFN, &pfn);
    if (rc == 0) rc = hvm_get_param(HVM_PARAM_CONSOLE_EVTCHN, &port);
    if (rc) return (int)rc;
    if (pfn == 0 || port == 0) return -XEN_ENOENT;
    cons_port = (evtchn_port_t)port;
    evtchn_bind_handler(cons_port, on_console_event, NULL);
    unsigned long irq = irq_save();
    cons_ring = (struct xencons_interface *)(uintptr_t)(pfn << PAGE_SHIFT);
    irq_restore(irq);
    notify_backend();
    return 0;
}

int console_ring_connected(void) { return cons_ring != NULL; }

/* Wait (up to timeout_ns) until xenconsoled has taken everything from `out`: before a shutdown ends the domain. */
void console_flush(uint64_t timeout_ns)
{
    if (!cons_ring || cons_stalled) return;
    uint64_t deadline = now_ns() + timeout_ns;
    while (__atomic_load_n(&cons_ring->out_cons, __ATOMIC_ACQUIRE) != cons_ring->out_prod && now_ns() < deadline)
        HYPERVISOR_sched_op(SCHEDOP_yield, NULL);
}
