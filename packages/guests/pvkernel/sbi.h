/*
 * The SBI calls the pvkernel makes of the firmware xenbox's hypervisor plays
 * (RISC-V SBI v2.0: BASE, DBCN, SRST, legacy console; packages/abi/src/riscv-sbi.ts).
 */
#ifndef PVKERNEL_SBI_H
#define PVKERNEL_SBI_H

#include <stddef.h>

struct sbiret { long error; long value; };

#define SBI_EID_BASE 0x10
#define SBI_EID_DBCN 0x4442434eUL
#define SBI_EID_SRST 0x53525354UL
#define SBI_EID_LEGACY_PUTCHAR 1
#define SBI_EID_LEGACY_GETCHAR 2
#define XEN_SBI_EID 0x0A000058UL /* xenbox's Xen hypercall extension (docs/pv-guest-abi.md) */

struct sbiret sbi_ecall(unsigned long eid, unsigned long fid, unsigned long a0, unsigned long a1,
                        unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
void sbi_init(void);                          /* probe DBCN */
void sbi_console_write(const char *s, size_t n);
int sbi_console_getc(void);                   /* a byte, or -1 if none waits */
void sbi_system_reset(unsigned type, unsigned reason);  /* SRST; returns only if refused */

#endif
