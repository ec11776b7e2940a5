/**
 * The guest machine's memory map: QEMU's `virt` board (hw/riscv/virt.c
 * virt_memmap[], UART0_IRQ, VIRTIO_IRQ, VIRT_PLIC_*; DESIGN §7).  The
 * hypervisor owns CLINT and PLIC and writes this map into every guest's
 * device tree; an HVM guest's device model serves the UART, the test device
 * and the virtio-mmio slots at these addresses.  Declared once, here.
 */
export const VIRT_BOARD = {
  /** sifive,test0: poweroff / reset (syscon-poweroff, syscon-reboot). */
  TEST: 0x0010_0000,
  TEST_SIZE: 0x1000,
  CLINT: 0x0200_0000,
  CLINT_SIZE: 0x1_0000,
  PLIC: 0x0c00_0000,
  /** VIRT_PLIC_SIZE(hart count) for QEMU's maximum; xenbox maps the whole window. */
  PLIC_SIZE: 0x60_0000,
  /** riscv,ndev: the number of PLIC interrupt sources the device tree announces. */
  PLIC_NDEV: 96,
  UART0: 0x1000_0000,
  UART0_SIZE: 0x100,
  UART0_IRQ: 10,
  /** ns16550a clock-frequency in the device tree (3.6864 MHz). */
  UART_CLOCK: 0x38_4000,
  VIRTIO: 0x1000_1000,
  VIRTIO_STRIDE: 0x1000,
  VIRTIO_COUNT: 8,
  /** virtio-mmio slot n (0-based) raises PLIC source n + 1. */
  VIRTIO_IRQ: 1,
  DRAM: 0x8000_0000,
  /** The honest ISA string: no F/D, or firmware touches fcsr and dies (riscv-platform.md §2). */
  ISA: 'rv64imac_zicsr_zifencei',
  /** timebase-frequency: mtime ticks at 10 MHz, as QEMU's virt. */
  TIMEBASE: 10_000_000,
} as const;
