/*
 * Traps: the event upcall (supervisor software interrupt) returns to what
 * was interrupted; anything else is a kernel bug and panics with the
 * registers, as Linux's die() would, ending in SHUTDOWN_crash.
 */
#include "core.h"

struct trap_frame {
    unsigned long x[32];    /* x[0] unused, x[2] = the interrupted sp */
    unsigned long sepc, sstatus, scause, stval;
};
_Static_assert(sizeof(struct trap_frame) == 288, "start.s trap frame");

#define SCAUSE_INTERRUPT (1UL << 63)
#define IRQ_S_SOFT 1

static const char *const causes[] = {
    "instruction address misaligned", "instruction access fault", "illegal instruction", "breakpoint",
    "load address misaligned", "load access fault", "store address misaligned", "store access fault",
    "environment call from U-mode", "environment call from S-mode", "reserved", "environment call from M-mode",
    "instruction page fault", "load page fault", "reserved", "store page fault",
};

static void dump(const struct trap_frame *f)
{
    static const char *const names[32] = {
        "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
        "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
    };
    printk(" sepc: %016lx sstatus: %016lx stval: %016lx\n", f->sepc, f->sstatus, f->stval);
    for (int i = 1; i < 32; i++) printk(" %4s: %016lx%s", names[i], f->x[i], i % 3 == 0 ? "\n" : "");
    printk("\n");
}

void trap_handler(struct trap_frame *f)
{
    if (f->scause & SCAUSE_INTERRUPT) {
        if ((f->scause & ~SCAUSE_INTERRUPT) == IRQ_S_SOFT) {
            xen_evtchn_do_upcall();
            return;
        }
        printk("trap: unexpected interrupt %lu\n", f->scause & ~SCAUSE_INTERRUPT);
        return;
    }
    unsigned long c = f->scause;
    printk("Oops: %s (scause %lu) at pc %016lx, address %016lx\n", c < 16 ? causes[c] : "unknown exception", c, f->sepc, f->stval);
    dump(f);
    panic("fatal exception");
}
