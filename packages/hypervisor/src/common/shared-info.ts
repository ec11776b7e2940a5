/**
 * A domain's shared_info page (xen/include/public/xen.h `struct shared_info`)
 * as the hypervisor sees it: typed views at the byte offsets of
 * @xenbox/abi SHARED_INFO / VCPU_INFO, over either the hypervisor's own copy
 * or, once a guest placed it with XENMEM_add_to_physmap(XENMAPSPACE_shared_info),
 * the page in the guest's RAM (a SharedArrayBuffer its vCPUs run on).
 *
 * Every access is an Atomics operation, since the guest reads and clears the
 * same words from a pCPU worker thread while the hypervisor sets them.
 */
import { EVTCHN_2L_NR_CHANNELS, SHARED_INFO, VCPU_INFO, XEN_LEGACY_MAX_VCPUS, XEN_PAGE_SIZE, vcpuInfoOffset } from '@xenbox/abi';

/** The per-vCPU event fields of a vcpu_info. */
export interface VcpuInfoView {
  /** evtchn_upcall_pending and evtchn_upcall_mask (bytes 0 and 1). */
  readonly bytes: Uint8Array;
  /** evtchn_pending_sel as two u32 halves (little-endian: bit w of the u64 is bit w % 32 of half w / 32). */
  readonly pendingSel: Uint32Array;
}

function vcpuInfoAt(buffer: ArrayBufferLike, byteOffset: number): VcpuInfoView {
  return {
    bytes: new Uint8Array(buffer, byteOffset, VCPU_INFO.size),
    pendingSel: new Uint32Array(buffer, byteOffset + VCPU_INFO.evtchn_pending_sel, 2),
  };
}

export class SharedInfoPage {
  /** The whole page. */
  readonly bytes: Uint8Array;
  /** evtchn_pending[64] as 128 u32 halves. */
  readonly pending: Uint32Array;
  /** evtchn_mask[64] as 128 u32 halves. */
  readonly mask: Uint32Array;
  private readonly vcpuInfos: VcpuInfoView[] = [];

  private constructor(
    buffer: ArrayBufferLike,
    readonly byteOffset: number,
    /** Where the guest placed it (a gfn), or null for the hypervisor's own copy. */
    readonly gfn: number | null,
  ) {
    this.bytes = new Uint8Array(buffer, byteOffset, XEN_PAGE_SIZE);
    this.pending = new Uint32Array(buffer, byteOffset + SHARED_INFO.evtchn_pending, EVTCHN_2L_NR_CHANNELS / 32);
    this.mask = new Uint32Array(buffer, byteOffset + SHARED_INFO.evtchn_mask, EVTCHN_2L_NR_CHANNELS / 32);
    for (let v = 0; v < XEN_LEGACY_MAX_VCPUS; v++) this.vcpuInfos.push(vcpuInfoAt(buffer, byteOffset + vcpuInfoOffset(v)));
  }

  /** The hypervisor's own copy, used until (or unless) the domain places the page. */
  static own(): SharedInfoPage {
    return new SharedInfoPage(new ArrayBuffer(XEN_PAGE_SIZE), 0, null);
  }

  /**
   * The page at `byteOffset` of a guest's RAM, taking over the state of
   * `from` (what Xen's page holds is what the guest then sees there).
   */
  static placeIn(ram: SharedArrayBuffer, byteOffset: number, gfn: number, from: SharedInfoPage): SharedInfoPage {
    const page = new SharedInfoPage(ram, byteOffset, gfn);
    page.bytes.set(from.bytes);
    return page;
  }

  /** vcpu_info of vCPU `v` (< XEN_LEGACY_MAX_VCPUS) in this page. */
  vcpuInfo(v: number): VcpuInfoView {
    return this.vcpuInfos[v]!;
  }
}

/** A vcpu_info outside shared_info, for vCPUs past XEN_LEGACY_MAX_VCPUS (Xen's dummy_vcpu_info). */
export function privateVcpuInfo(): VcpuInfoView {
  return vcpuInfoAt(new ArrayBuffer(VCPU_INFO.size), 0);
}
