/**
 * A domain as the scheduler sees it: its vCPUs, pause count, cpupool and
 * per-domain accounting.  (The hypervisor core owns the rest of the domain.)
 */
import type { Plic } from '../arch/riscv/plic.js';
import type { DomainDescriptor } from './slice-protocol.js';
import type { Vcpu } from './vcpu.js';
import type { Cpupool } from './cpupool.js';
import { ConsoleReorder } from './console-order.js';

export class SchedDomain {
  vcpus: Vcpu[] = [];
  /** Xen's pause_count: the domain runs only at 0. */
  pauseCount = 0;
  dying = false;
  /** Shut down (poweroff/reboot/crash): its vCPUs never run again (Xen: _VPF_down for shutdown). */
  shutdown = false;
  contextSwitches = 0;
  /** The scheduler's own per-domain data (csched2_dom ...). */
  priv: unknown;
  /** Puts console output from different pCPU workers back in the guest's order. */
  readonly consoleOrder = new ConsoleReorder();

  constructor(
    readonly domid: number,
    readonly desc: DomainDescriptor,
    readonly plic: Plic,
    public pool: Cpupool,
    /** Initial credit2 weight/cap, used when the domain joins a credit2 pool. */
    public weight: number,
    public cap: number,
  ) {}

  get cpuTimeNs(): number {
    return this.vcpus.reduce((t, v) => t + v.cpuTimeNs, 0);
  }
}
