/*
 * Power: SCHEDOP_shutdown with the reason the toolstack acts on
 * (on_poweroff / on_reboot / on_crash), as Linux's xen_reboot() does; SBI
 * system reset if Xen refuses.
 */
#include "core.h"
#include "hypercall.h"
#include "sbi.h"

static void shutdown(unsigned reason) __attribute__((noreturn));
static void shutdown(unsigned reason)
{
    struct sched_shutdown arg = { .reason = reason };
    console_flush(500ULL * 1000 * 1000);   /* let xenconsoled read our last words */
    HYPERVISOR_sched_op(SCHEDOP_shutdown, &arg);
    /* SRST: type 0 shutdown, 1 cold reboot; reason 1 = system failure */
    sbi_system_reset(reason == SHUTDOWN_reboot ? 1 : 0, reason == SHUTDOWN_crash ? 1 : 0);
    irq_disable();
    for (;;) asm volatile("wfi");
}

void kernel_poweroff(void)
{
    printk("reboot: Power down\n");
    shutdown(SHUTDOWN_poweroff);
}

void kernel_reboot(void)
{
    printk("reboot: Restarting system\n");
    shutdown(SHUTDOWN_reboot);
}

/* No printk: panic() has spoken, and this must work when printing faults. */
void kernel_crash(void)
{
    shutdown(SHUTDOWN_crash);
}
