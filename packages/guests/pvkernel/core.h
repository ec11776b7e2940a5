/*
 * The pvkernel core's own internals (not the drivers' interface: that is
 * kernel.h).  One vCPU; "interrupts" means sstatus.SIE.
 */
#ifndef PVKERNEL_CORE_H
#define PVKERNEL_CORE_H

#include "kernel.h"

#define SSTATUS_SIE (1UL << 1)
#define SIE_SSIE (1UL << 1)
#define SIP_SSIP (1UL << 1)

#ifndef PVKERNEL_HOST_TEST
static inline unsigned long irq_save(void)
{
    unsigned long s;
    asm volatile("csrrc %0, sstatus, %1" : "=r"(s) : "r"(SSTATUS_SIE) : "memory");
    return s & SSTATUS_SIE;
}
static inline void irq_restore(unsigned long s) { if (s) asm volatile("csrs sstatus, %0" ::"r"(SSTATUS_SIE) : "memory"); }
static inline void irq_enable(void) { asm volatile("csrs sstatus, %0" ::"r"(SSTATUS_SIE) : "memory"); }
static inline void irq_disable(void) { asm volatile("csrc sstatus, %0" ::"r"(SSTATUS_SIE) : "memory"); }
static inline uint64_t rdtime(void) { uint64_t t; asm volatile("rdtime %0" : "=r"(t)); return t; }
#else
/* The host unit tests (test/core-test.c) build the pure parts: no interrupts there. */
static inline unsigned long irq_save(void) { return 0; }
static inline void irq_restore(unsigned long s) { (void)s; }
#endif

/* What the device tree told us (fdt.c). */
struct boot_info {
    uint64_t ram_base, ram_size;    /* /memory reg: the RAM we may use */
    uint64_t dtb_base, dtb_size;    /* the blob itself, inside RAM */
    uint64_t timebase_hz;           /* /cpus timebase-frequency */
};
extern struct boot_info boot_info;
int fdt_parse(const void *dtb);     /* 0 or -XEN_EINVAL; fills boot_info and the command line */

void cmdline_set(const char *s, size_t len);

void console_early_init(void);
/* Switch printk to the Xen console ring (HVM_PARAM_CONSOLE_*): 0, or -errno and stay on SBI. */
int console_ring_init(void);
int console_ring_connected(void);
void console_write(const char *s, size_t n);
void console_flush(uint64_t timeout_ns);

void mm_init(void);
void events_init(void);
void time_init(void);
/* Incremented by the upcall for every event handled: kernel_wait() wakes on it. */
extern volatile unsigned long events_generation;
extern unsigned long wfi_wakeups;
int evtchn_bind_virq(uint32_t virq, evtchn_port_t *port);
void xen_evtchn_do_upcall(void);
void evtchn_show(void);
int gnttab_init(void);
size_t gnttab_refs_in_use(void);
int xenbus_init(void);   /* 0, or -errno (e.g. -XEN_ENOSYS without HVM params) and no xenstore */
int xenbus_available(void);
/* balloon.c: follow memory/target (xl mem-set) from the idle loop. */
void balloon_poll(void);
size_t balloon_pages(void);

void shell_run(void) __attribute__((noreturn));
int cpu_workload(int seconds);
uint64_t kernel_uptime_ns(void);

/* libc-ish */
unsigned long strtoul_(const char *s, const char **end, int base);
long strtol_(const char *s, const char **end, int base);

#endif
