/**
 * What every emulated device of the device model is (crosvm's BusDevice,
 * QEMU's MemoryRegionOps): an MMIO window with reads and writes, plus the
 * registers whose current value the hypervisor may serve itself (the
 * register mirror, packages/abi/src/ioreq.ts).  A device reaches the rest of
 * the world only through DeviceHost (interrupt line, console, shutdown).
 */
import type { ShutdownReason } from '@xenbox/abi';

export interface MirroredRegister {
  /** Offset in the device's window. */
  offset: number;
  size: number;
  value: number;
}

export interface MmioDeviceModel {
  readonly name: string;
  /** Guest-physical base and size of its window. */
  readonly base: number;
  readonly size: number;
  /** Writes return nothing the guest waits for, so they may be posted (buffered) by the hypervisor. */
  readonly postedWrites: boolean;
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): void;
  /**
   * The registers the hypervisor may answer from its mirror, with their
   * current values.  Only registers whose read has no side effect, and whose
   * value the guest's own posted writes do not change, belong here.
   */
  mirror(): MirroredRegister[];
}

/** The device model's services a device may use. */
export interface DeviceHost {
  /** Set the level of a PLIC source of the guest. */
  setIrq(source: number, level: boolean): void;
  /** Bytes for the guest's console (xl console, the console log). */
  consoleOutput(bytes: Uint8Array): void;
  /** The guest asked to power off / reset (the sifive test device). */
  shutdown(reason: ShutdownReason): void;
}
