/**
 * The devices of QEMU's `virt` board that the device model emulates, at
 * QEMU's addresses and interrupts (hw/riscv/virt.c virt_memmap[], UART0_IRQ,
 * VIRTIO_IRQ; DESIGN §7).  The hypervisor writes the same map into the
 * guest's device tree (packages/hypervisor/src/arch/riscv/virt-machine.ts).
 */
export const VIRT_BOARD = {
  TEST: 0x0010_0000,
  TEST_SIZE: 0x1000,
  UART0: 0x1000_0000,
  UART0_SIZE: 0x100,
  UART0_IRQ: 10,
  /** ns16550a clock-frequency in the device tree (3.6864 MHz). */
  UART_CLOCK: 0x384000,
  VIRTIO: 0x1000_1000,
  VIRTIO_STRIDE: 0x1000,
  VIRTIO_COUNT: 8,
  /** virtio-mmio slot n (0-based) raises PLIC source n + 1. */
  VIRTIO_IRQ: 1,
} as const;
