/**
 * The PV guest ABI of xenbox RISC-V (RV64) for event channels: the
 * shared_info page, the per-vCPU vcpu_info in it, and the interrupt that
 * an event upcall raises.  docs/pv-guest-abi.md tells the whole story.
 *
 * Layouts are Xen's (xen/include/public/xen.h `struct shared_info`,
 * `struct vcpu_info`, `struct vcpu_time_info`) with RISC-V's types from
 * xen/include/public/arch-riscv.h: xen_ulong_t is 64 bits, and
 * `struct arch_vcpu_info` / `struct arch_shared_info` are empty, as on Arm.
 *
 * One difference from upstream arch-riscv.h: XEN_LEGACY_MAX_VCPUS is 32 (as
 * on x86), not 1, because xenbox has no VCPUOP_register_vcpu_info yet: the
 * vcpu_info of vCPUs 0..31 live in shared_info.  vcpu_info keeps x86's
 * evtchn_upcall_mask byte (XEN_HAVE_PV_UPCALL_MASK); on Arm the byte is pad0.
 *
 * 2-level event channels (xen/common/event_2l.c): port p is bit p % 64 of
 * 64-bit word p / 64 of evtchn_pending / evtchn_mask.  Little-endian, so it
 * is also bit p % 32 of 32-bit word p / 32: the hypervisor works on u32
 * halves with Atomics, the guest on u64 words with AMOs.
 */

/** xen_ulong_t on RV64. */
export const XEN_ULONG_BYTES = 8;
/** Ports per word of the 2-level bitmaps (BITS_PER_EVTCHN_WORD). */
export const EVTCHN_WORD_BITS = 64;
/** vcpu_info slots in shared_info (see the note above: x86's 32, not arch-riscv.h's 1). */
export const XEN_LEGACY_MAX_VCPUS = 32;

/** struct vcpu_time_info (xen.h): 32 bytes. */
export const VCPU_TIME_INFO = {
  version: 0, // u32
  tsc_timestamp: 8, // u64
  system_time: 16, // u64
  tsc_to_system_mul: 24, // u32
  tsc_shift: 28, // i8
  flags: 29, // u8
  size: 32,
} as const;

/** struct vcpu_info (xen.h) on RV64: 48 bytes (the empty arch_vcpu_info takes none). */
export const VCPU_INFO = {
  evtchn_upcall_pending: 0, // u8
  evtchn_upcall_mask: 1, // u8
  evtchn_pending_sel: 8, // xen_ulong_t
  time: 16, // struct vcpu_time_info
  size: 48,
} as const;

/** struct shared_info (xen.h) on RV64 with 32 vcpu_info slots: 2576 bytes, in one 4 KiB page. */
export const SHARED_INFO = {
  vcpu_info: 0, // struct vcpu_info[XEN_LEGACY_MAX_VCPUS]
  evtchn_pending: XEN_LEGACY_MAX_VCPUS * VCPU_INFO.size, // xen_ulong_t[64] = 1536
  evtchn_mask: XEN_LEGACY_MAX_VCPUS * VCPU_INFO.size + 64 * XEN_ULONG_BYTES, // 2048
  wc_version: XEN_LEGACY_MAX_VCPUS * VCPU_INFO.size + 128 * XEN_ULONG_BYTES, // u32, 2560
  wc_sec: XEN_LEGACY_MAX_VCPUS * VCPU_INFO.size + 128 * XEN_ULONG_BYTES + 4, // u32
  wc_nsec: XEN_LEGACY_MAX_VCPUS * VCPU_INFO.size + 128 * XEN_ULONG_BYTES + 8, // u32
  wc_sec_hi: XEN_LEGACY_MAX_VCPUS * VCPU_INFO.size + 128 * XEN_ULONG_BYTES + 12, // u32
  size: XEN_LEGACY_MAX_VCPUS * VCPU_INFO.size + 128 * XEN_ULONG_BYTES + 16,
} as const;

/** Byte offset of vCPU `vcpu`'s vcpu_info in shared_info. */
export function vcpuInfoOffset(vcpu: number): number {
  return SHARED_INFO.vcpu_info + vcpu * VCPU_INFO.size;
}

/**
 * The interrupt an event-channel upcall raises in a RISC-V guest: the
 * supervisor software interrupt (SSIP, interrupt 1, scause
 * 0x8000_0000_0000_0001).  Xen on Arm raises a dedicated PPI
 * (GUEST_EVTCHN_PPI, arch-arm.h) named in the device tree's /hypervisor
 * node; RISC-V has no such line for a PVH guest without an AIA, and SEIP
 * cannot be cleared by S-mode, while S-mode can clear sip.SSIP itself.
 *
 * The guest's handler: clear sip.SSIP, then loop { vcpu_info.
 * evtchn_upcall_pending = 0; sel = xchg(evtchn_pending_sel, 0); for each
 * word in sel, take pending & ~mask } while evtchn_upcall_pending, as
 * Linux's __xen_evtchn_do_upcall() / evtchn_2l_handle_events() do.
 */
export const XEN_UPCALL_IRQ = 1;

/**
 * Xen "system time" for a xenbox RISC-V guest, the unit of set_timer_op:
 * nanoseconds = rdtime × 100 (the time base is 10 MHz, DESIGN §7).
 */
export const GUEST_NS_PER_TICK = 100;

/** XENMAPSPACE_* (xen/include/public/memory.h): what XENMEM_add_to_physmap places. */
export const XENMAPSPACE = {
  shared_info: 0,
  grant_table: 1,
  gmfn: 2,
  gmfn_range: 3,
  gmfn_foreign: 4,
  dev_mmio: 5,
} as const;
/** With XENMAPSPACE_grant_table: idx names a status frame (v2 only; xenbox is v1). */
export const XENMAPIDX_grant_table_status = 0x8000_0000;
