/**
 * What a domain builder (xl, in dom0) needs from the hypervisor package to
 * lay out a guest image: the ELF loader and the board's device tree.  A
 * separate entry point (`@xenbox/hypervisor/guest-image`) so that xl does
 * not load the CPU, the schedulers and piscina to build a device tree.
 */
export { parseElf, type ElfImage } from './arch/riscv/elf.js';
export { VIRT, virtDeviceTree, dtbAddress, type VirtTreeOptions } from './arch/riscv/virt-device-tree.js';
