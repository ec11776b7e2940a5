/**
 * The guest machine, laid out like QEMU's `virt` board (DESIGN §7; hw/riscv/virt.c;
 * the map is packages/abi/src/virt-board.ts): the devices the hypervisor owns
 * (CLINT, PLIC) and, standalone, the whole machine; the device tree handed to
 * the guest in a1 is virt-device-tree.ts.
 */
import { Bus, GuestRam, type MmioDevice } from './memory.js';
import { Clint, CLINT_SIZE } from './clint.js';
import { Plic, PLIC_SIZE } from './plic.js';
import { Ns16550 } from './ns16550.js';
import { SifiveTest } from './sifive-test.js';
import { Hart, type SbiHandler } from './hart.js';
import { VcpuState, W } from './vcpu-state.js';
import { VIRT, dtbAddress, virtDeviceTree } from './virt-device-tree.js';

export { VIRT, virtDeviceTree, dtbAddress, type VirtTreeOptions } from './virt-device-tree.js';

export interface VirtMachineOptions {
  memBytes: number;
  harts?: number;
  /** Console bytes from the UART (or SBI console). */
  console: (byte: number) => void;
  bootargs?: string;
  /** Serve SBI for S-mode guests (PVH) instead of expecting M-mode firmware. */
  sbi?: SbiHandler;
  /** Interpreted runs of a block before it is translated (HartOptions.hotRuns). */
  hotRuns?: number;
}

export interface VirtMachine {
  ram: GuestRam;
  bus: Bus;
  clint: Clint;
  plic: Plic;
  uart: Ns16550;
  test: SifiveTest;
  harts: Hart[];
  dtb: Uint8Array;
  dtbAddr: number;
}

/**
 * An unpopulated virtio-mmio slot (virtio spec 1.2 §4.2.2: magic "virt",
 * version 2, device ID 0 = no device), as QEMU answers for an empty one.  The
 * device tree lists all eight slots, and firmware probes each (U-Boot takes a
 * load access fault on an unmapped one).
 */
class EmptyVirtioSlot implements MmioDevice {
  read(offset: number, size: number): number {
    if (size !== 4) return 0;
    switch (offset) {
      case 0x000: return 0x74726976;
      case 0x004: return 2;
      case 0x00c: return 0x554d4551; // vendor "QEMU"
      default: return 0;
    }
  }
  write(): void {}
}

/** Build a whole virt machine in this thread: RAM, devices, harts and the DTB (written into RAM). */
export function createVirtMachine(opts: VirtMachineOptions): VirtMachine {
  const ram = GuestRam.allocate(opts.memBytes, VIRT.DRAM);
  const bus = new Bus(ram);
  const clint = new Clint();
  const plic = new Plic();
  const uart = new Ns16550(opts.console, (level) => plic.setLevel(VIRT.UART0_IRQ, level));
  const test = new SifiveTest();
  bus.map('test', VIRT.TEST, 0x1000, test);
  bus.map('clint', VIRT.CLINT, CLINT_SIZE, clint);
  bus.map('plic', VIRT.PLIC, PLIC_SIZE, plic);
  bus.map('uart0', VIRT.UART0, 0x100, uart);
  for (let n = 0; n < VIRT.VIRTIO_COUNT; n++) bus.map(`virtio${n}`, VIRT.VIRTIO + n * VIRT.VIRTIO_STRIDE, VIRT.VIRTIO_STRIDE, new EmptyVirtioSlot());
  const harts: Hart[] = [];
  for (let h = 0; h < (opts.harts ?? 1); h++) {
    const state = VcpuState.create(h);
    const hart = new Hart({ state, bus, clint, sbi: opts.sbi, hotRuns: opts.hotRuns });
    plic.attach(state);
    // PVH: secondary harts wait stopped until SBI HSM hart_start; M-mode firmware starts them all (hart lottery).
    if (h > 0 && opts.sbi) state.i32[W.HSM] = 1;
    harts.push(hart);
  }
  const dtb = virtDeviceTree({ memBytes: ram.size, harts: harts.length, bootargs: opts.bootargs });
  const dtbAddr = dtbAddress(ram.size, dtb.length);
  ram.write(dtbAddr, dtb);
  return { ram, bus, clint, plic, uart, test, harts, dtb, dtbAddr };
}
