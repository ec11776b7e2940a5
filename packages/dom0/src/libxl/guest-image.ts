/**
 * The memory image of a PVH guest, computed before anything is created
 * (libxenguest's xc_dom_* for RISC-V; Arm's libxl_arm.c makes the device
 * tree in the toolstack the same way): the kernel's ELF segments, the
 * device tree, the entry point.  Pure: the builder then writes it.
 */
import { GUEST_RAM_BASE, MAGIC_PAGES, XenError } from '@xenbox/abi';
import { dtbAddress, parseElf, virtDeviceTree } from '@xenbox/hypervisor/guest-image';

export const PAGE_SIZE = 4096;

export interface ImageChunk {
  /** Guest physical address. */
  gpa: number;
  data: Uint8Array;
}

export interface GuestImage {
  chunks: ImageChunk[];
  entry: number;
  dtbAddr: number;
  dtbSize: number;
}

export interface GuestImageInput {
  kernel: Uint8Array;
  kernelPath: string;
  memBytes: number;
  vcpus: number;
  cmdline?: string;
}

/** Segments must sit in RAM and clear of where the device tree goes. */
function checkFits(what: string, start: number, len: number, ramEnd: number): void {
  if (start < GUEST_RAM_BASE || start + len > ramEnd) {
    throw new XenError('ENOMEM', `${what} [0x${start.toString(16)}, 0x${(start + len).toString(16)}) does not fit the guest's RAM [0x${GUEST_RAM_BASE.toString(16)}, 0x${ramEnd.toString(16)}): raise memory=`);
  }
}

export function pvhGuestImage(input: GuestImageInput): GuestImage {
  const elf = parseElf(input.kernel);
  // The top MAGIC_PAGES of RAM are the console and xenstore rings (domain-rings.ts): not in /memory, nothing loaded there.
  const visibleBytes = input.memBytes - MAGIC_PAGES.count * PAGE_SIZE;
  const ramEnd = GUEST_RAM_BASE + visibleBytes;
  const dtb = virtDeviceTree({ memBytes: visibleBytes, harts: input.vcpus, bootargs: input.cmdline ?? '', devices: false });
  const dtbAddr = dtbAddress(visibleBytes, dtb.length);
  const chunks: ImageChunk[] = [];
  let kernelEnd = 0;
  for (const seg of elf.segments) {
    checkFits(`${input.kernelPath}: segment at 0x${seg.paddr.toString(16)}`, seg.paddr, seg.memSize, dtbAddr);
    // .bss is zero already: fresh guest RAM is zeroed by the hypervisor.
    if (seg.fileSize) chunks.push({ gpa: seg.paddr, data: seg.data.subarray(0, seg.fileSize) });
    kernelEnd = Math.max(kernelEnd, seg.paddr + seg.memSize);
  }
  checkFits('the device tree', dtbAddr, dtb.length, ramEnd);
  if (kernelEnd > dtbAddr) throw new XenError('ENOMEM', `${input.kernelPath} reaches 0x${kernelEnd.toString(16)}, over the device tree at 0x${dtbAddr.toString(16)}: raise memory=`);
  chunks.push({ gpa: dtbAddr, data: dtb });
  return { chunks, entry: Number(elf.entry), dtbAddr, dtbSize: dtb.length };
}

/** Split chunks into per-page writes (foreign.write takes one page at a time). */
export function pageWrites(chunks: ImageChunk[]): Array<{ gfn: number; offset: number; data: Uint8Array }> {
  const out: Array<{ gfn: number; offset: number; data: Uint8Array }> = [];
  for (const c of chunks) {
    let done = 0;
    while (done < c.data.length) {
      const gpa = c.gpa + done;
      const offset = gpa % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - offset, c.data.length - done);
      out.push({ gfn: Math.floor(gpa / PAGE_SIZE), offset, data: c.data.subarray(done, done + n) });
      done += n;
    }
  }
  return out;
}
