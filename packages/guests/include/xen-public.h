/*
 * The Xen public interface of xenbox's RISC-V guests, as C structs: one copy
 * for the PV test guests (pv/) and the PV kernel (pvkernel/).  Xen's public
 * headers with RISC-V's types (xen/include/public/arch-riscv.h: xen_ulong_t
 * and xen_pfn_t are 64-bit; arch_vcpu_info and arch_shared_info are empty).
 * The TypeScript side declares the same offsets once in packages/abi
 * (shared-info.ts, guest-structs.ts, xenstore.ts); the _Static_asserts hold
 * this file to them.  docs/pv-guest-abi.md describes the protocol.
 */
#ifndef XENBOX_XEN_PUBLIC_H
#define XENBOX_XEN_PUBLIC_H

#include <stddef.h>
#include <stdint.h>

typedef uint16_t domid_t;
typedef uint32_t evtchn_port_t;
typedef uint32_t grant_ref_t;
typedef uint64_t xen_ulong_t;
typedef uint64_t xen_pfn_t;

#define DOMID_SELF 0x7FF0

/* __HYPERVISOR_* (xen.h) */
#define __HYPERVISOR_memory_op 12
#define __HYPERVISOR_set_timer_op 15
#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_console_io 18
#define __HYPERVISOR_grant_table_op 20
#define __HYPERVISOR_sched_op 29
#define __HYPERVISOR_event_channel_op 32
#define __HYPERVISOR_hvm_op 34

/* ---- sched.h ---- */
#define SCHEDOP_yield 0
#define SCHEDOP_block 1
#define SCHEDOP_shutdown 2
#define SHUTDOWN_poweroff 0
#define SHUTDOWN_reboot 1
#define SHUTDOWN_crash 3
struct sched_shutdown { unsigned int reason; };

/* ---- shared_info (xen.h); XEN_LEGACY_MAX_VCPUS is xenbox's 32, see docs/pv-guest-abi.md ---- */
#define XEN_LEGACY_MAX_VCPUS 32

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
    struct vcpu_time_info time;
};

struct shared_info {
    struct vcpu_info vcpu_info[XEN_LEGACY_MAX_VCPUS];
    xen_ulong_t evtchn_pending[sizeof(xen_ulong_t) * 8];
    xen_ulong_t evtchn_mask[sizeof(xen_ulong_t) * 8];
    uint32_t wc_version, wc_sec, wc_nsec, wc_sec_hi;
};

_Static_assert(sizeof(struct vcpu_info) == 48, "VCPU_INFO.size");
_Static_assert(offsetof(struct vcpu_info, evtchn_pending_sel) == 8, "VCPU_INFO.evtchn_pending_sel");
_Static_assert(offsetof(struct vcpu_info, time) == 16, "VCPU_INFO.time");
_Static_assert(offsetof(struct shared_info, evtchn_pending) == 1536, "SHARED_INFO.evtchn_pending");
_Static_assert(offsetof(struct shared_info, evtchn_mask) == 2048, "SHARED_INFO.evtchn_mask");
_Static_assert(offsetof(struct shared_info, wc_version) == 2560, "SHARED_INFO.wc_version");
_Static_assert(sizeof(struct shared_info) == 2576, "SHARED_INFO.size");

#define EVTCHN_2L_NR_CHANNELS (sizeof(xen_ulong_t) * 8 * sizeof(xen_ulong_t) * 8)

/* ---- event_channel.h ---- */
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
struct evtchn_port_op { evtchn_port_t port; };  /* send, close, unmask: { port } */
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

/* ---- grant_table.h, v1 ---- */
#define GNTTABOP_setup_table 2
#define GNTTABOP_query_size 6
#define GTF_permit_access 1
#define GTF_readonly (1 << 2)
#define GTF_reading (1 << 3)
#define GTF_writing (1 << 4)
#define GNTTAB_NR_RESERVED_ENTRIES 8
#define GNTTAB_RESERVED_CONSOLE 0
#define GNTTAB_RESERVED_XENSTORE 1

struct grant_entry_v1 { uint16_t flags; domid_t domid; uint32_t frame; };
struct gnttab_setup_table { domid_t dom; uint32_t nr_frames; int16_t status; uint64_t frame_list; };
struct gnttab_query_size { domid_t dom; uint32_t nr_frames, max_nr_frames; int16_t status; };
_Static_assert(sizeof(struct grant_entry_v1) == 8, "GRANT_ENTRY_V1_SIZE");
_Static_assert(offsetof(struct gnttab_setup_table, frame_list) == 16, "GNTTAB_STRUCT.setup_table");
_Static_assert(offsetof(struct gnttab_query_size, status) == 12, "GNTTAB_STRUCT.query_size");

/* ---- memory.h ---- */
#define XENMEM_decrease_reservation 1
#define XENMEM_current_reservation 3
#define XENMEM_populate_physmap 6
#define XENMEM_add_to_physmap 7
#define XENMAPSPACE_shared_info 0
#define XENMAPSPACE_grant_table 1

struct xen_add_to_physmap { domid_t domid; uint16_t size; unsigned int space; xen_ulong_t idx; xen_pfn_t gpfn; };
_Static_assert(offsetof(struct xen_add_to_physmap, gpfn) == 16 && sizeof(struct xen_add_to_physmap) == 24, "XENMEM_STRUCT.add_to_physmap");

struct xen_memory_reservation { xen_pfn_t extent_start; xen_ulong_t nr_extents; unsigned int extent_order, mem_flags; domid_t domid; };
_Static_assert(offsetof(struct xen_memory_reservation, domid) == 24 && sizeof(struct xen_memory_reservation) == 32, "XENMEM_STRUCT.reservation");

/* ---- hvm/hvm_op.h, hvm/params.h: where the toolstack put the xenstore and console rings ---- */
#define HVMOP_set_param 0
#define HVMOP_get_param 1
#define HVM_PARAM_STORE_PFN 1
#define HVM_PARAM_STORE_EVTCHN 2
#define HVM_PARAM_CONSOLE_PFN 17
#define HVM_PARAM_CONSOLE_EVTCHN 18

struct xen_hvm_param { domid_t domid; uint32_t index; uint64_t value; };
_Static_assert(offsetof(struct xen_hvm_param, index) == 4 && offsetof(struct xen_hvm_param, value) == 8 && sizeof(struct xen_hvm_param) == 16, "HVM_STRUCT.param");

/* ---- xen.h CONSOLEIO, version.h ---- */
#define CONSOLEIO_write 0
#define XENVER_version 0

/* ---- io/xs_wire.h ---- */
enum xsd_sockmsg_type {
    XS_CONTROL = 0, XS_DIRECTORY = 1, XS_READ = 2, XS_GET_PERMS = 3, XS_WATCH = 4, XS_UNWATCH = 5,
    XS_TRANSACTION_START = 6, XS_TRANSACTION_END = 7, XS_INTRODUCE = 8, XS_RELEASE = 9,
    XS_GET_DOMAIN_PATH = 10, XS_WRITE = 11, XS_MKDIR = 12, XS_RM = 13, XS_SET_PERMS = 14,
    XS_WATCH_EVENT = 15, XS_ERROR = 16,
};
struct xsd_sockmsg { uint32_t type, req_id, tx_id, len; };
#define XENSTORE_PAYLOAD_MAX 4096
#define XENSTORE_RING_SIZE 1024
#define MASK_XENSTORE_IDX(i) ((i) & (XENSTORE_RING_SIZE - 1))
#define XS_WATCH_PATH 0
#define XS_WATCH_TOKEN 1

struct xenstore_domain_interface {
    char req[XENSTORE_RING_SIZE];
    char rsp[XENSTORE_RING_SIZE];
    uint32_t req_cons, req_prod;
    uint32_t rsp_cons, rsp_prod;
    uint32_t server_features;
    uint32_t connection;
    uint32_t error;
};
_Static_assert(offsetof(struct xenstore_domain_interface, req_cons) == 2048, "xenstore req_cons");
_Static_assert(offsetof(struct xenstore_domain_interface, rsp_prod) == 2060, "xenstore rsp_prod");
_Static_assert(offsetof(struct xenstore_domain_interface, error) == 2072, "xenstore error");

/* ---- io/console.h ---- */
struct xencons_interface {
    char in[1024];
    char out[2048];
    uint32_t in_cons, in_prod;
    uint32_t out_cons, out_prod;
    uint8_t connection;
};
_Static_assert(offsetof(struct xencons_interface, in_cons) == 3072, "xencons in_cons");
_Static_assert(offsetof(struct xencons_interface, out_prod) == 3084, "xencons out_prod");
_Static_assert(offsetof(struct xencons_interface, connection) == 3088, "xencons connection");

#endif
