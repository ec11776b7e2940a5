/**
 * The guest machine, laid out like QEMU's `virt` board (DESIGN §7; hw/riscv/virt.c):
 * one source of truth for the memory map, the devices the hypervisor owns
 * (CLINT, PLIC) and the device tree handed to the guest in a1.
 */
import { Bus, GuestRam, type MmioDevice } from './memory.js';
import { Clint, CLINT_SIZE } from './clint.js';
import { Plic, PLIC_NDEV, PLIC_SIZE } from './plic.js';
import { Ns16550 } from './ns16550.js';
import { SifiveTest } from './sifive-test.js';
import { Hart, type SbiHandler } from './hart.js';
import { VcpuState, W } from './vcpu-state.js';
import { node, u64Cells, writeFdt, type FdtNode } from './fdt.js';

export const VIRT = {
  TEST: 0x0010_0000,
  CLINT: 0x0200_0000,
  PLIC: 0x0c00_0000,
  UART0: 0x1000_0000,
  UART0_IRQ: 10,
  VIRTIO: 0x1000_1000,
  VIRTIO_STRIDE: 0x1000,
  VIRTIO_COUNT: 8,
  /** virtio-mmio slot n (0-based) uses PLIC source n + 1. */
  VIRTIO_IRQ: 1,
  DRAM: 0x8000_0000,
  /** The honest ISA string: no F/D, or firmware touches fcsr and dies (riscv-platform.md §2). */
  ISA: 'rv64imac_zicsr_zifencei',
  TIMEBASE: 10_000_000,
  UART_CLOCK: 0x384000,
} as const;

export interface VirtTreeOptions {
  memBytes: number;
  harts?: number;
  bootargs?: string;
  /** Include the UART, test device and virtio-mmio slots (HVM); PVH guests get none. */
  devices?: boolean;
  initrd?: { start: number; end: number };
}

const PHANDLE_PLIC = 0x100, PHANDLE_TEST = 0x101;
const intcPhandle = (hart: number): number => 1 + hart;

/** The device tree of the machine (Devicetree spec v0.4; bindings as QEMU's virt writes them). */
export function virtDeviceTree(opts: VirtTreeOptions): Uint8Array {
  const harts = opts.harts ?? 1;
  const devices = opts.devices ?? true;
  const uartPath = `/soc/serial@${VIRT.UART0.toString(16)}`;
  const chosen: [string, string | number[]][] = [['bootargs', opts.bootargs ?? '']];
  if (devices) chosen.push(['stdout-path', uartPath]);
  if (opts.initrd) {
    chosen.push(['linux,initrd-start', u64Cells(opts.initrd.start)], ['linux,initrd-end', u64Cells(opts.initrd.end)]);
  }
  const cpus: FdtNode[] = [];
  for (let h = 0; h < harts; h++) {
    cpus.push(node(`cpu@${h}`, [
      ['device_type', 'cpu'], ['reg', [h]], ['status', 'okay'], ['compatible', 'riscv'],
      ['riscv,isa', VIRT.ISA], ['riscv,isa-base', 'rv64i'], ['riscv,isa-extensions', ['i', 'm', 'a', 'c', 'zicsr', 'zifencei']],
      ['mmu-type', 'riscv,sv39'],
    ], [node('interrupt-controller', [
      ['#interrupt-cells', [1]], ['interrupt-controller', true], ['compatible', 'riscv,cpu-intc'], ['phandle', [intcPhandle(h)]],
    ])]));
  }
  const ext = (irqs: number[]): number[] => Array.from({ length: harts }, (_, h) => irqs.flatMap((i) => [intcPhandle(h), i])).flat();
  const soc: FdtNode[] = [
    node(`clint@${VIRT.CLINT.toString(16)}`, [
      ['interrupts-extended', ext([3, 7])], ['reg', [...u64Cells(VIRT.CLINT), ...u64Cells(CLINT_SIZE)]],
      ['compatible', ['sifive,clint0', 'riscv,clint0']],
    ]),
    node(`plic@${VIRT.PLIC.toString(16)}`, [
      ['phandle', [PHANDLE_PLIC]], ['riscv,ndev', [PLIC_NDEV]], ['reg', [...u64Cells(VIRT.PLIC), ...u64Cells(PLIC_SIZE)]],
      ['interrupts-extended', ext([11, 9])], ['interrupt-controller', true],
      ['compatible', ['sifive,plic-1.0.0', 'riscv,plic0']], ['#address-cells', [0]], ['#interrupt-cells', [1]],
    ]),
  ];
  const top: FdtNode[] = [node('chosen', chosen)];
  if (devices) {
    soc.push(
      node(`serial@${VIRT.UART0.toString(16)}`, [
        ['interrupts', [VIRT.UART0_IRQ]], ['interrupt-parent', [PHANDLE_PLIC]], ['clock-frequency', [VIRT.UART_CLOCK]],
        ['reg', [...u64Cells(VIRT.UART0), ...u64Cells(0x100)]], ['compatible', 'ns16550a'],
      ]),
      node(`test@${VIRT.TEST.toString(16)}`, [
        ['phandle', [PHANDLE_TEST]], ['reg', [...u64Cells(VIRT.TEST), ...u64Cells(0x1000)]],
        ['compatible', ['sifive,test1', 'sifive,test0', 'syscon']],
      ]),
    );
    for (let n = VIRT.VIRTIO_COUNT - 1; n >= 0; n--) {
      const base = VIRT.VIRTIO + n * VIRT.VIRTIO_STRIDE;
      soc.push(node(`virtio_mmio@${base.toString(16)}`, [
        ['interrupts', [VIRT.VIRTIO_IRQ + n]], ['interrupt-parent', [PHANDLE_PLIC]],
        ['reg', [...u64Cells(base), ...u64Cells(VIRT.VIRTIO_STRIDE)]], ['compatible', 'virtio,mmio'],
      ]));
    }
    top.push(
      node('poweroff', [['value', [0x5555]], ['offset', [0]], ['regmap', [PHANDLE_TEST]], ['compatible', 'syscon-poweroff']]),
      node('reboot', [['value', [0x7777]], ['offset', [0]], ['regmap', [PHANDLE_TEST]], ['compatible', 'syscon-reboot']]),
    );
  }
  top.push(
    node(`memory@${VIRT.DRAM.toString(16)}`, [['device_type', 'memory'], ['reg', [...u64Cells(VIRT.DRAM), ...u64Cells(opts.memBytes)]]]),
    node('cpus', [['#address-cells', [1]], ['#size-cells', [0]], ['timebase-frequency', [VIRT.TIMEBASE]]], cpus),
    node('soc', [['#address-cells', [2]], ['#size-cells', [2]], ['compatible', 'simple-bus'], ['ranges', true]], soc),
  );
  return writeFdt(node('', [
    ['#address-cells', [2]], ['#size-cells', [2]], ['compatible', 'riscv-virtio'], ['model', 'riscv-virtio,qemu'],
  ], top));
}

/** Where QEMU puts the DTB: top of RAM (capped at 3 GiB) minus its size, aligned down to 2 MiB. */
export function dtbAddress(memBytes: number, dtbSize: number): number {
  const top = VIRT.DRAM + Math.min(memBytes, 0xc000_0000 - VIRT.DRAM);
  return Math.floor((top - dtbSize) / 0x200000) * 0x200000;
}

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
