export * from './hypervisor.js';
export * from './common/domain.js';
export * from './common/console.js';
export * from './launch.js';
export * from './common/host-memory.js';
export * from './common/memory.js';
export * from './common/page.js';
export * from './common/event-channel.js';
export * from './common/grant-table.js';
// The guest-image pieces the toolstack's domain builder uses (as libxenguest does).
export { parseElf, type ElfImage } from './arch/riscv/elf.js';
export { VIRT, virtDeviceTree, dtbAddress } from './arch/riscv/virt-machine.js';
