#include "guest.h"

#define SBI_EID_DBCN 0x4442434eUL
#define SBI_DBCN_WRITE_BYTE 2
#define SBI_EID_SRST 0x53525354UL
#define XEN_SBI_EID 0x0A000058UL

struct sbiret sbi_call(ulong eid, ulong fid, ulong a0, ulong a1, ulong a2)
{
    register ulong r_a0 asm("a0") = a0;
    register ulong r_a1 asm("a1") = a1;
    register ulong r_a2 asm("a2") = a2;
    register ulong r_a6 asm("a6") = fid;
    register ulong r_a7 asm("a7") = eid;
    asm volatile("ecall" : "+r"(r_a0), "+r"(r_a1) : "r"(r_a2), "r"(r_a6), "r"(r_a7) : "memory");
    return (struct sbiret){ (long)r_a0, (long)r_a1 };
}

long xen_hypercall(ulong op, ulong a0, ulong a1, ulong a2)
{
    struct sbiret r = sbi_call(XEN_SBI_EID, op, a0, a1, a2);
    return r.error ? -38 /* ENOSYS */ : r.value;
}

void putc_(char c) { sbi_call(SBI_EID_DBCN, SBI_DBCN_WRITE_BYTE, (unsigned char)c, 0, 0); }

void puts_(const char *s) { while (*s) putc_(*s++); }

void putdec(ulong v)
{
    char buf[24];
    int i = 0;
    do { buf[i++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (i) putc_(buf[--i]);
}

void puthex(ulong v)
{
    puts_("0x");
    for (int s = 60; s >= 0; s -= 4) putc_("0123456789abcdef"[(v >> s) & 15]);
}

ulong rdtime(void)
{
    ulong t;
    asm volatile("rdtime %0" : "=r"(t));
    return t;
}

/* SCHEDOP_shutdown, as a PV kernel's xen_reboot() does. */
void guest_shutdown(unsigned reason)
{
    static unsigned arg;
    arg = reason;
    xen_hypercall(HYPERVISOR_sched_op, SCHEDOP_shutdown, (ulong)&arg, 0);
    for (;;) asm volatile("wfi");
}

void guest_poweroff(void) { guest_shutdown(SHUTDOWN_poweroff); }

/* An unexpected trap is a panic: say why and report a crash, like Linux's panic -> xen_reboot(SHUTDOWN_crash). */
void guest_trap(ulong scause, ulong sepc, ulong stval)
{
    puts_("panic: unexpected trap scause=");
    puthex(scause);
    puts_(" sepc=");
    puthex(sepc);
    puts_(" stval=");
    puthex(stval);
    puts_("\n");
    guest_shutdown(SHUTDOWN_crash);
}
