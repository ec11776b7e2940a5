/*
 * Boot: SBI console → device tree → memory → event channels and the timer →
 * grant table → xenstore and the console ring → banner → devices → the
 * workload the command line names, else the shell.  docs/pvkernel.md.
 *
 * Without xenstore (a toolstack that gives no HVM params: hvm_op is
 * -ENOSYS) the kernel says so and carries on with the SBI console, no
 * devices, the workload or the shell.
 */
#include <string.h>
#include "core.h"

static char domain_name[64] = "?";

static void say_init(const char *what, int rc)
{
    if (rc) printk("%s: %d\n", what, rc);
}

static void connect_xenstore(void)
{
    int rc = xenbus_init();
    if (rc == -XEN_ENOSYS) {
        printk("no xenstore (hvm_op get_param: %d)\n", rc);
        return;
    }
    if (rc) {
        printk("no xenstore (%d)\n", rc);
        return;
    }
    if (xenbus_read(XBT_NIL, "name", domain_name, sizeof domain_name) < 0) strcpy(domain_name, "?");
}

static void connect_console(void)
{
    int rc = console_ring_init();
    if (rc == 0) printk("console: switched to the Xen console ring\n");
    else if (rc != -XEN_ENOSYS) printk("console: no console ring (%d), staying on the SBI console\n", rc);
}

/* What we tell xenstore about ourselves (data/ is the guest's own, writable directory). */
static void publish(void)
{
    if (!xenbus_available()) return;
    xenbus_write(XBT_NIL, "data/kernel", "xenbox-pvkernel");
    xenbus_printf(XBT_NIL, "data", "memory-kb", "%lu", (unsigned long)(boot_info.ram_size >> 10));
    xenbus_printf(XBT_NIL, "data", "boot-ms", "%llu", (unsigned long long)(kernel_uptime_ns() / 1000000));
}

/* The core's own workloads: `cpu [seconds=N]`, `shell`. 1 if the command line named one. */
static int core_workload(void)
{
    const char *w = cmdline_word(0);
    if (!w) return 0;
    if (!strcmp(w, "shell")) return 0;
    if (!strcmp(w, "cpu")) {
        const char *secs = cmdline_value("seconds");
        cpu_workload(secs ? (int)strtoul_(secs, NULL, 10) : 5);
        return 1;
    }
    return -1;
}

/* After a workload: what `then=` says (poweroff, reboot, shell); the shell by default. */
static void after_workload(void)
{
    const char *then = cmdline_value("then");
    if (then && !strcmp(then, "poweroff")) kernel_poweroff();
    if (then && !strcmp(then, "reboot")) kernel_reboot();
    shell_run();
}

void kmain(unsigned long hartid, const void *dtb)
{
    console_early_init();
    if (fdt_parse(dtb) != 0) panic("no usable device tree at %p", dtb);
    printk("xenbox pvkernel booting on hart %lu: RAM %lx+%lx, device tree at %p\n", hartid,
           (unsigned long)boot_info.ram_base, (unsigned long)boot_info.ram_size, dtb);
    mm_init();
    events_init();
    time_init();
    say_init("grant table: init failed", gnttab_init());
    connect_xenstore();
    connect_console();
    printk("xenbox pvkernel: domid %u (%s), %lu MiB, cmdline '%s'\n", xen_domid(), domain_name,
           (unsigned long)(boot_info.ram_size >> 20), kernel_cmdline());
    publish();
    if (xenbus_available()) devices_init();
    int core = core_workload();
    if (core == 1) after_workload();
    if (core < 0) {
        if (workload_run(kernel_cmdline()) != 0) after_workload();
        printk("no workload '%s': starting the shell\n", cmdline_word(0));
    }
    shell_run();
}
