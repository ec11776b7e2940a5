/*
 * Xen hypercalls from the pvkernel: ecall with a7 = the Xen SBI extension,
 * a6 = __HYPERVISOR_*, a0..a4 = arguments; a0 = SBI error, a1 = Xen's long
 * result (docs/pv-guest-abi.md "Making a hypercall").  Results are Xen's:
 * >= 0 success, -errno (Xen's numbers, kernel.h XEN_E*) failure.
 */
#ifndef PVKERNEL_HYPERCALL_H
#define PVKERNEL_HYPERCALL_H

#include "kernel.h"
#include "../include/xen-public.h"

long xen_hypercall(unsigned long op, unsigned long a0, unsigned long a1, unsigned long a2);

static inline long HYPERVISOR_memory_op(unsigned cmd, void *arg) { return xen_hypercall(__HYPERVISOR_memory_op, cmd, (unsigned long)arg, 0); }
static inline long HYPERVISOR_event_channel_op(unsigned cmd, void *arg) { return xen_hypercall(__HYPERVISOR_event_channel_op, cmd, (unsigned long)arg, 0); }
static inline long HYPERVISOR_grant_table_op(unsigned cmd, void *arg, unsigned count) { return xen_hypercall(__HYPERVISOR_grant_table_op, cmd, (unsigned long)arg, count); }
static inline long HYPERVISOR_sched_op(unsigned cmd, void *arg) { return xen_hypercall(__HYPERVISOR_sched_op, cmd, (unsigned long)arg, 0); }
static inline long HYPERVISOR_set_timer_op(uint64_t deadline_ns) { return xen_hypercall(__HYPERVISOR_set_timer_op, deadline_ns, 0, 0); }
static inline long HYPERVISOR_hvm_op(unsigned cmd, void *arg) { return xen_hypercall(__HYPERVISOR_hvm_op, cmd, (unsigned long)arg, 0); }
static inline long HYPERVISOR_xen_version(unsigned cmd, void *arg) { return xen_hypercall(__HYPERVISOR_xen_version, cmd, (unsigned long)arg, 0); }

/* HVMOP_get_param for ourselves: 0 and *value, or -errno. */
long hvm_get_param(uint32_t index, uint64_t *value);

#endif
