/*
 * Weak stand-ins for the drivers' entry points (kernel.h), so the core links
 * and boots on its own: no devices, no workloads of theirs, no commands.
 * The drivers' devices.c replaces them.
 */
#include "kernel.h"

__attribute__((weak)) void devices_init(void) {}

__attribute__((weak)) void devices_list(void) { printk("no devices\n"); }

__attribute__((weak)) int workload_run(const char *cmdline)
{
    (void)cmdline;
    return 0;
}

__attribute__((weak)) void devices_poll(void) {}

__attribute__((weak)) int shell_command(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return -XEN_ENOENT;
}
