/**
 * What the toolstack's domain builder and the hypervisor agree on to start
 * and talk to a RISC-V guest (DESIGN §7; Xen: XEN_DOMCTL_setvcpucontext and
 * the console).
 *
 * Building a PVH guest (libxl/libxenguest's job, done by dom0):
 *   1. domctl.createdomain {kind: 'pvh', memkb, max_vcpus}  -> RAM at GUEST_RAM_BASE
 *   2. foreign.write the kernel's ELF segments and the device tree into it
 *   3. domctl.setvcpucontext {vcpu: 0, ctx: {pc: entry, a0: 0, a1: dtb, mode: 'S'}}
 *   4. domctl.unpausedomain -> the scheduler runs vCPU 0
 * Secondary vCPUs start through SBI HSM hart_start (PVH) or the firmware's
 * own protocol (HVM), not through the builder.
 *
 * Console of a guest: what it writes through SBI (DBCN, legacy putchar) or
 * its emulated UART goes to the hypervisor console (`xl dmesg`, as "(dN) ...")
 * and to the dom0 console daemon (xenconsoled) that subscribed, as
 * `console.output` events; xenconsoled sends keyboard input back with
 * `console.input`.
 */
import type { DomId } from './domid.js';

/** Guest physical address of RAM (QEMU virt's DRAM base). */
export const GUEST_RAM_BASE = 0x8000_0000;

/** The privilege a vCPU starts in: S for a PVH kernel (the hypervisor is its SBI), M for HVM firmware. */
export type VcpuStartMode = 'S' | 'M';

/** XEN_DOMCTL_setvcpucontext for RISC-V: the registers a boot protocol sets. */
export interface VcpuContext {
  pc: number;
  /** hartid, by the RISC-V boot convention. */
  a0: number;
  /** Guest physical address of the device tree. */
  a1: number;
  mode: VcpuStartMode;
}

export interface SetVcpuContextArgs {
  domid: DomId;
  vcpu: number;
  ctx: VcpuContext;
}

/** Bytes a guest wrote to its console. */
export interface ConsoleOutputEvent {
  domid: DomId;
  data: Uint8Array;
}

export interface ConsoleInputArgs {
  domid: DomId;
  data: Uint8Array;
}

/** Bytes of console output the hypervisor keeps per guest for a late-attaching xenconsoled (like Xen's console ring, 16 KiB). */
export const GUEST_CONSOLE_BACKLOG = 16 * 1024;
