/*
 * Time and sleeping.  Guest system time is the RISC-V time CSR in ns
 * (xenbox's time base is 10 MHz, read from /cpus timebase-frequency;
 * vcpu_time_info is not maintained yet: docs/pv-guest-abi.md).
 *
 * kernel_wait() sleeps in WFI with a one-shot Xen timer (set_timer_op,
 * delivered as VIRQ_TIMER) for its deadline.  It never loses a wake-up: it
 * returns at once if any event was handled since it last returned
 * (events_generation), and the check and the WFI run with sstatus.SIE off;
 * WFI still ends on a pending SSIP (it ignores SIE), and turning SIE on
 * then takes the upcall (docs/pv-guest-abi.md §2).
 */
#include "core.h"
#include "hypercall.h"

static uint64_t ns_per_tick = 100;    /* 10 MHz until the device tree says otherwise */
static uint64_t boot_ns;
static uint64_t timer_armed;          /* the deadline set_timer_op holds, 0 = none */
static unsigned long seen_generation;
unsigned long wfi_wakeups;           /* for the shell's uptime */

uint64_t now_ns(void) { return rdtime() * ns_per_tick; }

uint64_t kernel_uptime_ns(void) { return now_ns() - boot_ns; }

static void on_timer(evtchn_port_t port, void *arg)
{
    (void)port;
    (void)arg;
    timer_armed = 0;
}

void time_init(void)
{
    if (boot_info.timebase_hz && 1000000000ULL % boot_info.timebase_hz == 0)
        ns_per_tick = 1000000000ULL / boot_info.timebase_hz;
    boot_ns = now_ns();
    evtchn_port_t port;
    int rc = evtchn_bind_virq(VIRQ_TIMER, &port);
    if (rc) panic("time: bind_virq(VIRQ_TIMER) failed: %d", rc);
    evtchn_bind_handler(port, on_timer, NULL);
}

static void arm(uint64_t deadline)
{
    if (deadline == 0 || deadline == timer_armed) return;
    /* A timer already due sooner wakes us first; a spurious wake-up is harmless. */
    if (timer_armed && timer_armed < deadline && timer_armed > now_ns()) return;
    timer_armed = deadline;
    HYPERVISOR_set_timer_op(deadline);
}

void kernel_wait(uint64_t deadline_ns)
{
    irq_disable();
    while (events_generation == seen_generation) {
        if (deadline_ns && now_ns() >= deadline_ns) break;
        arm(deadline_ns);
        asm volatile("wfi");
        wfi_wakeups++;
        irq_enable();   /* take the upcall, if that is what woke us */
        irq_disable();
    }
    seen_generation = events_generation;
    irq_enable();
}
