/**
 * ELF64 loader for RISC-V guest images (System V gABI; RISC-V psABI):
 * copies PT_LOAD segments to their physical addresses, zero-fills .bss, and
 * reads the symbol table (the runner looks up `tohost`/`fromhost`).
 */
import { XenError } from '@xenbox/abi';
import type { GuestRam } from './memory.js';

const EM_RISCV = 243;
const PT_LOAD = 1;
const SHT_SYMTAB = 2;

export interface ElfImage {
  entry: bigint;
  segments: { paddr: number; vaddr: bigint; fileSize: number; memSize: number; data: Uint8Array }[];
  symbols: Map<string, bigint>;
}

/** Parse an ELF64 little-endian RISC-V executable; bad input is a XenError('ENOEXEC'). */
export function parseElf(bytes: Uint8Array): ElfImage {
  const fail = (what: string): never => {
    throw new XenError('ENOEXEC', `not a loadable RV64 ELF: ${what}`);
  };
  if (bytes.length < 64) fail('file shorter than an ELF header');
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) fail('bad magic');
  if (bytes[4] !== 2) fail('not ELFCLASS64');
  if (bytes[5] !== 1) fail('not little-endian');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = dv.getUint16(16, true);
  if (type !== 2 && type !== 3) fail(`e_type ${type} is not EXEC or DYN`);
  if (dv.getUint16(18, true) !== EM_RISCV) fail(`e_machine ${dv.getUint16(18, true)} is not RISC-V (243)`);
  const entry = dv.getBigUint64(24, true);
  const phoff = Number(dv.getBigUint64(32, true));
  const shoff = Number(dv.getBigUint64(40, true));
  const phentsize = dv.getUint16(54, true), phnum = dv.getUint16(56, true);
  const shentsize = dv.getUint16(58, true), shnum = dv.getUint16(60, true);
  if (phnum === 0) fail('no program headers');
  if (phoff + phnum * phentsize > bytes.length) fail('program headers past the end of the file');

  const segments: ElfImage['segments'] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (dv.getUint32(p, true) !== PT_LOAD) continue;
    const offset = Number(dv.getBigUint64(p + 8, true));
    const vaddr = dv.getBigUint64(p + 16, true);
    const paddr = Number(dv.getBigUint64(p + 24, true));
    const fileSize = Number(dv.getBigUint64(p + 32, true));
    const memSize = Number(dv.getBigUint64(p + 40, true));
    if (offset + fileSize > bytes.length) fail(`segment ${i} extends past the end of the file`);
    if (memSize < fileSize) fail(`segment ${i} has p_memsz < p_filesz`);
    if (memSize === 0) continue;
    segments.push({ paddr, vaddr, fileSize, memSize, data: bytes.subarray(offset, offset + fileSize) });
  }
  if (segments.length === 0) fail('no PT_LOAD segment');

  const symbols = new Map<string, bigint>();
  if (shoff && shoff + shnum * shentsize <= bytes.length) {
    for (let i = 0; i < shnum; i++) {
      const s = shoff + i * shentsize;
      if (dv.getUint32(s + 4, true) !== SHT_SYMTAB) continue;
      const symOff = Number(dv.getBigUint64(s + 24, true));
      const symSize = Number(dv.getBigUint64(s + 32, true));
      const strIdx = dv.getUint32(s + 40, true);
      const str = shoff + strIdx * shentsize;
      const strOff = Number(dv.getBigUint64(str + 24, true));
      for (let o = symOff; o + 24 <= symOff + symSize && o + 24 <= bytes.length; o += 24) {
        const nameOff = dv.getUint32(o, true);
        let end = strOff + nameOff;
        while (end < bytes.length && bytes[end] !== 0) end++;
        const name = new TextDecoder().decode(bytes.subarray(strOff + nameOff, end));
        if (name) symbols.set(name, dv.getBigUint64(o + 8, true));
      }
    }
  }
  return { entry, segments, symbols };
}

/** Load an image's segments into guest RAM (at their physical addresses). */
export function loadElf(ram: GuestRam, image: ElfImage): void {
  for (const seg of image.segments) {
    const off = ram.offsetOf(seg.paddr, seg.memSize);
    if (off < 0) {
      throw new XenError('ENOEXEC', `segment at 0x${seg.paddr.toString(16)} (+0x${seg.memSize.toString(16)}) does not fit guest RAM 0x${ram.base.toString(16)}+0x${ram.size.toString(16)}`);
    }
    ram.u8.set(seg.data, off);
    ram.u8.fill(0, off + seg.fileSize, off + seg.memSize);
  }
}
