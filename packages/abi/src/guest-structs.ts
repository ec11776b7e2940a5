/**
 * Byte layouts (RV64, little-endian) of the hypercall argument structs a
 * RISC-V PV guest passes by pointer.  Offsets are Xen's C layouts with
 * RISC-V's types (xen/include/public/arch-riscv.h): domid_t u16,
 * evtchn_port_t u32, grant_ref_t u32, xen_ulong_t/xen_pfn_t u64,
 * XEN_GUEST_HANDLE 8 bytes, 8-byte aligned.  packages/guests/include/xen-public.h
 * declares the same structs in C and checks these offsets at compile time.
 */

/** xen/include/public/event_channel.h */
export const EVTCHN_STRUCT = {
  /** struct evtchn_alloc_unbound { domid_t dom, remote_dom; evtchn_port_t port; } */
  alloc_unbound: { dom: 0, remote_dom: 2, port: 4, size: 8 },
  /** struct evtchn_bind_interdomain { domid_t remote_dom; evtchn_port_t remote_port, local_port; } */
  bind_interdomain: { remote_dom: 0, remote_port: 4, local_port: 8, size: 12 },
  /** struct evtchn_bind_virq { uint32_t virq, vcpu; evtchn_port_t port; } */
  bind_virq: { virq: 0, vcpu: 4, port: 8, size: 12 },
  /** struct evtchn_bind_ipi { uint32_t vcpu; evtchn_port_t port; } */
  bind_ipi: { vcpu: 0, port: 4, size: 8 },
  /** struct evtchn_close / evtchn_send / evtchn_unmask { evtchn_port_t port; } */
  port_only: { port: 0, size: 4 },
  /**
   * struct evtchn_status { domid_t dom; evtchn_port_t port; uint32_t status, vcpu;
   * union { struct { domid_t dom; } unbound; struct { domid_t dom; evtchn_port_t port; } interdomain;
   * uint32_t pirq; uint32_t virq; } u; }
   */
  status: { dom: 0, port: 4, status: 8, vcpu: 12, u: 16, u_port: 20, size: 24 },
} as const;

/** xen/include/public/grant_table.h */
export const GNTTAB_STRUCT = {
  /** struct gnttab_setup_table { domid_t dom; uint32_t nr_frames; int16_t status; XEN_GUEST_HANDLE(xen_pfn_t) frame_list; } */
  setup_table: { dom: 0, nr_frames: 4, status: 8, frame_list: 16, size: 24 },
  /** struct gnttab_query_size { domid_t dom; uint32_t nr_frames, max_nr_frames; int16_t status; } */
  query_size: { dom: 0, nr_frames: 4, max_nr_frames: 8, status: 12, size: 16 },
} as const;

/** xen/include/public/memory.h */
export const XENMEM_STRUCT = {
  /** struct xen_add_to_physmap { domid_t domid; uint16_t size; unsigned int space; xen_ulong_t idx; xen_pfn_t gpfn; } */
  add_to_physmap: { domid: 0, size_: 2, space: 4, idx: 8, gpfn: 16, size: 24 },
  /**
   * struct xen_memory_reservation { XEN_GUEST_HANDLE(xen_pfn_t) extent_start; xen_ulong_t nr_extents;
   * unsigned int extent_order, mem_flags; domid_t domid; }
   */
  reservation: { extent_start: 0, nr_extents: 8, extent_order: 16, mem_flags: 20, domid: 24, size: 32 },
} as const;


/** xen/include/public/hvm/hvm_op.h */
export const HVM_STRUCT = {
  /** struct xen_hvm_param { domid_t domid; uint32_t index; uint64_t value; } */
  param: { domid: 0, index: 4, value: 8, size: 16 },
} as const;
