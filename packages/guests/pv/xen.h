/*
 * The Xen PV interface of xenbox RISC-V guests (RV64), as C structs.
 *
 * Layouts are Xen's public headers with RISC-V's types
 * (xen/include/public/arch-riscv.h: xen_ulong_t and xen_pfn_t are 64-bit,
 * arch_vcpu_info/arch_shared_info are empty); the TypeScript side declares
 * the same offsets once in packages/abi/src/shared-info.ts and
 * guest-structs.ts, and the _Static_asserts below hold both to them.
 * docs/pv-guest-abi.md describes the protocol.
 */
#ifndef PV_XEN_H
#define PV_XEN_H

#include <stdint.h>
#include <stddef.h>

typedef uint16_t domid_t;
typedef uint32_t evtchn_port_t;
typedef uint32_t grant_ref_t;
typedef uint64_t xen_ulong_t;
typedef uint64_t xen_pfn_t;

#define DOMID_SELF 0x7FF0

/* __HYPERVISOR_* (xen.h) */
#define HYPERVISOR_memory_op 12
#define HYPERVISOR_set_timer_op 15
#define HYPERVISOR_grant_table_op 20
#define HYPERVISOR_event_channel_op 32

/* ---- shared_info (xen.h) ---- */
#define XEN_LEGACY_MAX_VCPUS 32 /* xenbox: x86's 32 (no VCPUOP_register_vcpu_info yet) */

struct vcpu_time_info {
    uint32_t version, pad0;
    uint64_t tsc_timestamp, system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags, pad1[2];
};

struct vcpu_info {
    uint8_t evtchn_upcall_pending;
    uint8_t evtchn_upcall_mask;
    xen_ulong_t evtchn_pending_sel;
    /* struct arch_vcpu_info arch: empty on RISC-V */
    struct vcpu_time_info time;
};

struct shared_info {
    struct vcpu_info vcpu_info[XEN_LEGACY_MAX_VCPUS];
    xen_ulong_t evtchn_pending[sizeof(xen_ulong_t) * 8];
    xen_ulong_t evtchn_mask[sizeof(xen_ulong_t) * 8];
    uint32_t wc_version, wc_sec, wc_nsec, wc_sec_hi;
    /* struct arch_shared_info arch: empty on RISC-V */
};

_Static_assert(sizeof(struct vcpu_info) == 48, "VCPU_INFO.size");
_Static_assert(offsetof(struct vcpu_info, evtchn_pending_sel) == 8, "VCPU_INFO.evtchn_pending_sel");
_Static_assert(offsetof(struct vcpu_info, time) == 16, "VCPU_INFO.time");
_Static_assert(offsetof(struct shared_info, evtchn_pending) == 1536, "SHARED_INFO.evtchn_pending");
_Static_assert(offsetof(struct shared_info, evtchn_mask) == 2048, "SHARED_INFO.evtchn_mask");
_Static_assert(offsetof(struct shared_info, wc_version) == 2560, "SHARED_INFO.wc_version");
_Static_assert(sizeof(struct shared_info) == 2576, "SHARED_INFO.size");

/* ---- event channels (event_channel.h) ---- */
#define EVTCHNOP_bind_interdomain 0
#define EVTCHNOP_bind_virq 1
#define EVTCHNOP_close 3
#define EVTCHNOP_send 4
#define EVTCHNOP_status 5
#define EVTCHNOP_alloc_unbound 6
#define EVTCHNOP_bind_ipi 7
#define EVTCHNOP_unmask 9
#define VIRQ_TIMER 0

struct evtchn_alloc_unbound { domid_t dom, remote_dom; evtchn_port_t port; };
struct evtchn_bind_interdomain { domid_t remote_dom; evtchn_port_t remote_port, local_port; };
struct evtchn_bind_virq { uint32_t virq, vcpu; evtchn_port_t port; };
struct evtchn_bind_ipi { uint32_t vcpu; evtchn_port_t port; };
struct evtchn_send { evtchn_port_t port; };
struct evtchn_unmask { evtchn_port_t port; };
struct evtchn_close { evtchn_port_t port; };
struct evtchn_status {
    domid_t dom;
    evtchn_port_t port;
    uint32_t status, vcpu;
    union {
        struct { domid_t dom; } unbound;
        struct { domid_t dom; evtchn_port_t port; } interdomain;
        uint32_t pirq, virq;
    } u;
};
_Static_assert(sizeof(struct evtchn_alloc_unbound) == 8, "EVTCHN_STRUCT.alloc_unbound");
_Static_assert(offsetof(struct evtchn_bind_interdomain, local_port) == 8, "EVTCHN_STRUCT.bind_interdomain");
_Static_assert(offsetof(struct evtchn_bind_virq, port) == 8, "EVTCHN_STRUCT.bind_virq");
_Static_assert(offsetof(struct evtchn_status, u) == 16 && sizeof(struct evtchn_status) == 24, "EVTCHN_STRUCT.status");

/* ---- grant tables (grant_table.h), v1 ---- */
#define GNTTABOP_setup_table 2
#define GNTTABOP_query_size 6
#define GTF_permit_access 1
#define GTF_readonly (1 << 2)
#define GNTTAB_NR_RESERVED_ENTRIES 8

struct grant_entry_v1 { uint16_t flags; domid_t domid; uint32_t frame; };
struct gnttab_setup_table { domid_t dom; uint32_t nr_frames; int16_t status; uint64_t frame_list; };
struct gnttab_query_size { domid_t dom; uint32_t nr_frames, max_nr_frames; int16_t status; };
_Static_assert(offsetof(struct gnttab_setup_table, frame_list) == 16, "GNTTAB_STRUCT.setup_table");
_Static_assert(offsetof(struct gnttab_query_size, status) == 12, "GNTTAB_STRUCT.query_size");

/* ---- memory (memory.h) ---- */
#define XENMEM_add_to_physmap 7
#define XENMAPSPACE_shared_info 0
#define XENMAPSPACE_grant_table 1

struct xen_add_to_physmap { domid_t domid; uint16_t size; unsigned int space; xen_ulong_t idx; xen_pfn_t gpfn; };
_Static_assert(offsetof(struct xen_add_to_physmap, gpfn) == 16 && sizeof(struct xen_add_to_physmap) == 24, "XENMEM_STRUCT.add_to_physmap");

#define PAGE_SHIFT 12
#define PAGE_SIZE 4096
#define XEN_UPCALL_IRQ 1 /* SSIP: @xenbox/abi XEN_UPCALL_IRQ */

#endif
