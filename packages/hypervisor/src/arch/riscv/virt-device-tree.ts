/**
 * The device tree of the guest machine (QEMU's `virt` board, the map in
 * packages/abi/src/virt-board.ts) and where it goes in RAM: all the domain
 * builder needs from the hypervisor package, in a file that does not load
 * the CPU (xl imports it through `@xenbox/hypervisor/guest-image`).
 */
import { VIRT_BOARD } from '@xenbox/abi';
import { node, u64Cells, writeFdt, type FdtNode } from './fdt.js';

/** The board's memory map (packages/abi/src/virt-board.ts), under the name this file has always used. */
export const VIRT = VIRT_BOARD;

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
      ['interrupts-extended', ext([3, 7])], ['reg', [...u64Cells(VIRT.CLINT), ...u64Cells(VIRT.CLINT_SIZE)]],
      ['compatible', ['sifive,clint0', 'riscv,clint0']],
    ]),
    node(`plic@${VIRT.PLIC.toString(16)}`, [
      ['phandle', [PHANDLE_PLIC]], ['riscv,ndev', [VIRT.PLIC_NDEV]], ['reg', [...u64Cells(VIRT.PLIC), ...u64Cells(VIRT.PLIC_SIZE)]],
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

