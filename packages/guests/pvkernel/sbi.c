/*
 * SBI console and reset (RISC-V SBI spec v2.0 ch. 12 DBCN, ch. 10 SRST,
 * ch. 5 legacy).  The console is the early one: printk uses it until the
 * Xen console ring is connected, and for ever when there is none.
 */
#include "sbi.h"

static int have_dbcn;

struct sbiret sbi_ecall(unsigned long eid, unsigned long fid, unsigned long a0, unsigned long a1,
                        unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)
{
    register unsigned long r0 asm("a0") = a0;
    register unsigned long r1 asm("a1") = a1;
    register unsigned long r2 asm("a2") = a2;
    register unsigned long r3 asm("a3") = a3;
    register unsigned long r4 asm("a4") = a4;
    register unsigned long r5 asm("a5") = a5;
    register unsigned long r6 asm("a6") = fid;
    register unsigned long r7 asm("a7") = eid;
    asm volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r3), "r"(r4), "r"(r5), "r"(r6), "r"(r7) : "memory");
    return (struct sbiret){ (long)r0, (long)r1 };
}

/* sbi_probe_extension (BASE fid 3): nonzero if the extension is there. */
void sbi_init(void)
{
    struct sbiret r = sbi_ecall(SBI_EID_BASE, 3, SBI_EID_DBCN, 0, 0, 0, 0, 0);
    have_dbcn = r.error == 0 && r.value != 0;
}

/* DBCN console_write takes a physical buffer (satp is Bare: our pointers are physical). */
void sbi_console_write(const char *s, size_t n)
{
    while (n && have_dbcn) {
        struct sbiret r = sbi_ecall(SBI_EID_DBCN, 0, n, (unsigned long)s, 0, 0, 0, 0);
        if (r.error || r.value <= 0) break;
        s += r.value;
        n -= (size_t)r.value;
    }
    for (; n; n--, s++) sbi_ecall(SBI_EID_LEGACY_PUTCHAR, 0, (unsigned char)*s, 0, 0, 0, 0, 0);
}

int sbi_console_getc(void)
{
    if (have_dbcn) {
        unsigned char c;
        struct sbiret r = sbi_ecall(SBI_EID_DBCN, 1, 1, (unsigned long)&c, 0, 0, 0, 0);
        return r.error == 0 && r.value == 1 ? c : -1;
    }
    long v = sbi_ecall(SBI_EID_LEGACY_GETCHAR, 0, 0, 0, 0, 0, 0, 0).error;
    return v < 0 ? -1 : (int)(v & 0xff);
}

void sbi_system_reset(unsigned type, unsigned reason)
{
    sbi_ecall(SBI_EID_SRST, 0, type, reason, 0, 0, 0, 0);
}
