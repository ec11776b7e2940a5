/*
 * pv-evtchn-test: the PV guest ABI end to end (test/pv-guest.test.ts).
 *   1. maps shared_info and takes upcalls on SSIP;
 *   2. hostile calls: a bad pointer gets -EFAULT, a bad EVTCHNOP -ENOSYS, and we go on;
 *   3. binds VIRQ_TIMER, sets a timer, sleeps in WFI: "timer upcall";
 *   4. grants dom0 a page holding a known string, offers dom0 an unbound port
 *      and prints "port=N gref=M"; then echoes every event on that port back,
 *      printing the count every 25.
 */
#include "../pvh/guest.h"
#include "events.h"
#include "grant.h"

#define EFAULT 14
#define ENOSYS 38

static char granted_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE))) = "xenbox: a page granted by a RISC-V PV guest";

static volatile int timer_fired;
static volatile unsigned pings;
static unsigned echoed;

static void on_timer(evtchn_port_t port) { (void)port; timer_fired = 1; }
static void on_ping(evtchn_port_t port) { (void)port; pings++; }
static int timer_done(void) { return timer_fired; }
static int ping_waiting(void) { return pings != echoed; }

static void say(const char *what, long v)
{
    puts_(what);
    if (v < 0) { putc_('-'); v = -v; }
    putdec((ulong)v);
    puts_("\n");
}

static void check(const char *what, long rc)
{
    if (rc >= 0) return;
    say(what, rc);
    guest_shutdown(SHUTDOWN_crash);
}

int main(void)
{
    puts_("pv-evtchn-test: start\n");
    events_init();
    puts_("shared_info mapped\n");

    struct evtchn_send nothing = { 0 };
    say("bad pointer rc=", evtchn_op(EVTCHNOP_send, (void *)0x1000));
    say("bad op rc=", evtchn_op(99, &nothing));

    evtchn_port_t timer_port;
    check("bind_virq failed: ", evtchn_bind_virq(VIRQ_TIMER, 0, &timer_port));
    evtchn_set_handler(timer_port, on_timer);
    check("set_timer_op failed: ", set_timer_op(xen_system_time() + 20 * 1000 * 1000));
    wait_until(timer_done);
    puts_("timer upcall\n");

    check("grant_init failed: ", grant_init());
    long gref = grant_access(0, granted_page, 1);
    check("grant_access failed: ", gref);
    evtchn_port_t port;
    check("alloc_unbound failed: ", evtchn_alloc_unbound(0, &port));
    evtchn_set_handler(port, on_ping);
    puts_("port=");
    putdec(port);
    puts_(" gref=");
    putdec((ulong)gref);
    puts_("\n");

    for (;;) {
        wait_until(ping_waiting);
        echoed++;
        check("send failed: ", evtchn_send(port));
        if (echoed % 25 == 0) say("echoed ", echoed);
    }
}
