/**
 * The devices of QEMU's `virt` board that the device model emulates sit at
 * the addresses of the one memory map, packages/abi/src/virt-board.ts (the
 * hypervisor writes the same map into the guest's device tree).
 */
export { VIRT_BOARD } from '@xenbox/abi';
