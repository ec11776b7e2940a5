/**
 * The RISC-V Supervisor Binary Interface as xenbox's hypervisor serves it to
 * S-mode (PVH) guests, plus the Xen hypercall entry.
 *
 * Calling convention (SBI spec v2.0, §3 "Binary Encoding"): `ecall` from
 * S-mode with a7 = extension ID (EID), a6 = function ID (FID), a0..a5 =
 * arguments.  On return a0 = error code (SBI_SUCCESS or a negative
 * SBI_ERR_*), a1 = value.  Every other register is preserved.  The legacy
 * extensions (EID 0x00..0x08) return only a0.
 *
 * ## Xen hypercalls
 *
 * Xen hypercalls are an SBI extension in the firmware-specific range
 * (0x0A000000..0x0AFFFFFF, SBI spec §3):
 *
 * | register | on entry                                  | on return                      |
 * |----------|-------------------------------------------|--------------------------------|
 * | a7       | XEN_SBI_EID (0x0A000058, 'X')             | preserved                      |
 * | a6       | hypercall number (`__HYPERVISOR_*`, below) | preserved                      |
 * | a0..a5   | hypercall arguments 1..6                  | a0 = SBI error, a1 = Xen result |
 *
 * a0 is SBI_SUCCESS when the hypervisor served the call (whatever the
 * hypercall's own outcome) and SBI_ERR_NOT_SUPPORTED for an unknown
 * hypercall number; a1 is then Xen's `long` return value: >= 0 on success,
 * a negated Xen errno (`-XEN_ERRNO.EINVAL`) on failure, exactly what the
 * hypercall returns on x86/Arm.  Pointer arguments are guest virtual
 * addresses, as in Xen's PVH/Arm ABI.
 *
 * Events reach a guest as the supervisor software interrupt (SSIP, irq 1):
 * see XEN_UPCALL_IRQ in shared-info.ts and docs/pv-guest-abi.md.
 */

/** SBI implementation version this hypervisor reports: spec v2.0. */
export const SBI_SPEC_VERSION = (2 << 24) | 0;
/** SBI implementation ID 7 is "Xen Project" in the SBI spec's registry. */
export const SBI_IMPL_ID_XEN = 7;
/** Implementation version: xenbox 0.1. */
export const SBI_IMPL_VERSION = 0x0001;

/** Extension IDs (SBI spec §4–§12). */
export const SBI_EID = {
  LEGACY_SET_TIMER: 0x00,
  LEGACY_CONSOLE_PUTCHAR: 0x01,
  LEGACY_CONSOLE_GETCHAR: 0x02,
  LEGACY_CLEAR_IPI: 0x03,
  LEGACY_SEND_IPI: 0x04,
  LEGACY_REMOTE_FENCE_I: 0x05,
  LEGACY_REMOTE_SFENCE_VMA: 0x06,
  LEGACY_REMOTE_SFENCE_VMA_ASID: 0x07,
  LEGACY_SHUTDOWN: 0x08,
  BASE: 0x10,
  TIME: 0x54494d45, // "TIME"
  IPI: 0x735049, // "sPI"
  RFENCE: 0x52464e43, // "RFNC"
  HSM: 0x48534d, // "HSM"
  SRST: 0x53525354, // "SRST"
  DBCN: 0x4442434e, // "DBCN"
} as const;

/** The Xen hypercall extension: firmware-specific range, 'X' = 0x58. */
export const XEN_SBI_EID = 0x0a000058;

/** Function IDs per extension. */
export const SBI_BASE_FID = {
  GET_SPEC_VERSION: 0,
  GET_IMPL_ID: 1,
  GET_IMPL_VERSION: 2,
  PROBE_EXTENSION: 3,
  GET_MVENDORID: 4,
  GET_MARCHID: 5,
  GET_MIMPID: 6,
} as const;
export const SBI_TIME_FID = { SET_TIMER: 0 } as const;
export const SBI_IPI_FID = { SEND_IPI: 0 } as const;
export const SBI_RFENCE_FID = {
  REMOTE_FENCE_I: 0,
  REMOTE_SFENCE_VMA: 1,
  REMOTE_SFENCE_VMA_ASID: 2,
  REMOTE_HFENCE_GVMA_VMID: 3,
  REMOTE_HFENCE_GVMA: 4,
  REMOTE_HFENCE_VVMA_ASID: 5,
  REMOTE_HFENCE_VVMA: 6,
} as const;
export const SBI_HSM_FID = { HART_START: 0, HART_STOP: 1, HART_GET_STATUS: 2, HART_SUSPEND: 3 } as const;
/** HSM hart states (SBI spec §9, table 39). */
export const SBI_HSM_STATE = {
  STARTED: 0,
  STOPPED: 1,
  START_PENDING: 2,
  STOP_PENDING: 3,
  SUSPENDED: 4,
  SUSPEND_PENDING: 5,
  RESUME_PENDING: 6,
} as const;
export const SBI_SRST_FID = { SYSTEM_RESET: 0 } as const;
export const SBI_SRST_TYPE = { SHUTDOWN: 0, COLD_REBOOT: 1, WARM_REBOOT: 2 } as const;
export const SBI_SRST_REASON = { NONE: 0, SYSTEM_FAILURE: 1 } as const;
export const SBI_DBCN_FID = { CONSOLE_WRITE: 0, CONSOLE_READ: 1, CONSOLE_WRITE_BYTE: 2 } as const;

/** Standard SBI error codes (SBI spec §3, table 1). */
export const SBI_ERR = {
  SUCCESS: 0,
  FAILED: -1,
  NOT_SUPPORTED: -2,
  INVALID_PARAM: -3,
  DENIED: -4,
  INVALID_ADDRESS: -5,
  ALREADY_AVAILABLE: -6,
  ALREADY_STARTED: -7,
  ALREADY_STOPPED: -8,
  NO_SHMEM: -9,
} as const;

/**
 * Xen hypercall numbers carried in a6 (xen/include/public/xen.h).  Only the
 * ones PVH guests of xenbox use are listed; others are still forwarded.
 */
export const XEN_HYPERCALL = {
  memory_op: 12,
  xen_version: 17,
  console_io: 18,
  set_timer_op: 15,
  grant_table_op: 20,
  vcpu_op: 24,
  sched_op: 29,
  event_channel_op: 32,
  hvm_op: 34,
} as const;

/** Registers of the Xen hypercall ABI, by their RISC-V integer register number. */
export const XEN_HYPERCALL_REGS = {
  eid: 17, // a7
  op: 16, // a6
  args: [10, 11, 12, 13, 14, 15], // a0..a5
  error: 10, // a0 on return
  result: 11, // a1 on return
} as const;
