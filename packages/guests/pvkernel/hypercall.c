/* Xen hypercalls through xenbox's SBI extension (packages/abi/src/riscv-sbi.ts). */
#include "hypercall.h"
#include "sbi.h"

long xen_hypercall(unsigned long op, unsigned long a0, unsigned long a1, unsigned long a2)
{
    struct sbiret r = sbi_ecall(XEN_SBI_EID, op, a0, a1, a2, 0, 0, 0);
    /* SBI_ERR_NOT_SUPPORTED: no Xen behind this SBI at all. */
    return r.error ? -XEN_ENOSYS : r.value;
}

/* As Linux's hvm_get_parameter() (arch/x86/xen/enlighten_hvm.c, drivers/xen/xenbus/xenbus_probe.c). */
long hvm_get_param(uint32_t index, uint64_t *value)
{
    struct xen_hvm_param p = { .domid = DOMID_SELF, .index = index };
    long rc = HYPERVISOR_hvm_op(HVMOP_get_param, &p);
    if (rc == 0) *value = p.value;
    return rc;
}
