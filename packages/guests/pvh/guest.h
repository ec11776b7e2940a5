/*
 * The little runtime of xenbox's PVH test guests: SBI console and reset,
 * and Xen hypercalls through the SBI extension xenbox defines
 * (packages/abi/src/riscv-sbi.ts: a7 = 0x0A000058, a6 = __HYPERVISOR_*,
 * a0..a5 = arguments; a0 = SBI error, a1 = Xen's return value).
 */
#ifndef GUEST_H
#define GUEST_H

typedef unsigned long ulong;

struct sbiret { long error; long value; };

struct sbiret sbi_call(ulong eid, ulong fid, ulong a0, ulong a1, ulong a2);
long xen_hypercall(ulong op, ulong a0, ulong a1, ulong a2);

void putc_(char c);
void puts_(const char *s);
void putdec(ulong v);
void puthex(ulong v);

/* __HYPERVISOR_sched_op, SCHEDOP_shutdown, SHUTDOWN_* (xen/include/public/sched.h) */
#define HYPERVISOR_sched_op 29
#define SCHEDOP_shutdown 2
#define SHUTDOWN_poweroff 0
#define SHUTDOWN_reboot 1
#define SHUTDOWN_crash 3

void guest_shutdown(unsigned reason) __attribute__((noreturn));
void guest_poweroff(void) __attribute__((noreturn));
ulong rdtime(void);

#endif
