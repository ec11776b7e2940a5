/**
 * Hypercall buffers of a RISC-V guest: copy_from_guest / copy_to_guest
 * (xen/include/xen/guest_access.h) for the pointers a guest passes.
 *
 * Pointers are guest virtual addresses.  xenbox's PVH guests run with
 * translation off (satp Bare), where that is the guest-physical address; a
 * guest with paging on must pass identity-mapped buffers, which is not
 * supported yet (EFAULT).  An access must lie in populated RAM, else EFAULT:
 * a bad pointer fails the hypercall, never the guest.
 */
import { XEN_PAGE_SIZE, XenError } from '@xenbox/abi';
import type { Domain } from '../../common/domain.js';

export class GuestMemory {
  constructor(
    private readonly d: Domain,
    /** Whether the calling vCPU has translation on (satp.MODE != Bare). */
    private readonly pagingOn: () => boolean,
  ) {}

  /** copy_from_guest: a private copy of `len` bytes at `addr` (read once, so no double fetch). */
  read(addr: bigint, len: number): DataView {
    const bytes = this.span(addr, len).slice();
    return new DataView(bytes.buffer);
  }

  readBytes(addr: bigint, len: number): Uint8Array {
    return this.span(addr, len).slice();
  }

  /** copy_to_guest of raw bytes. */
  write(addr: bigint, bytes: Uint8Array): void {
    this.span(addr, bytes.length).set(bytes);
  }

  writeU16(addr: bigint, v: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, true);
    this.write(addr, b);
  }

  writeI16(addr: bigint, v: number): void {
    this.writeU16(addr, v & 0xffff);
  }

  writeU32(addr: bigint, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.write(addr, b);
  }

  writeU64(addr: bigint, v: bigint | number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.write(addr, b);
  }

  /** The guest RAM bytes at [addr, addr+len): in RAM and populated, else EFAULT. */
  private span(addr: bigint, len: number): Uint8Array {
    if (this.pagingOn()) throw new XenError('EFAULT', 'hypercall buffers of guests with paging on must be identity-mapped (not supported yet)');
    const ram = this.d.memory.ram;
    const where = `guest buffer 0x${addr.toString(16)}+${len}`;
    if (!ram) throw new XenError('EFAULT', `${where}: d${this.d.domid} has no RAM`);
    const base = BigInt(this.d.memory.ramBaseGfn * XEN_PAGE_SIZE);
    if (len < 0 || addr < base || addr + BigInt(len) > base + BigInt(ram.byteLength)) throw new XenError('EFAULT', `${where} is outside RAM`);
    const off = Number(addr - base);
    const first = this.d.memory.ramBaseGfn + Math.floor(off / XEN_PAGE_SIZE);
    const last = this.d.memory.ramBaseGfn + Math.floor((off + Math.max(len, 1) - 1) / XEN_PAGE_SIZE);
    for (let gfn = first; gfn <= last; gfn++) {
      if (!this.d.memory.page(gfn)) throw new XenError('EFAULT', `${where}: gfn 0x${gfn.toString(16)} is not populated`);
    }
    return new Uint8Array(ram, off, len);
  }
}
