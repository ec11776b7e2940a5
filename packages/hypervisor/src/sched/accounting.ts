/**
 * Accounting: measured run time per vCPU (the worker times Hart.run), per
 * domain (the sum), context switches, and per-pCPU busy time, from which the
 * scheduling overhead is the share of pCPU wall time with runnable work that
 * was not spent in guest code.
 */
import type { Vcpu } from './vcpu.js';

export class PcpuAccounting {
  /** ns spent in Hart.run. */
  guestNs = 0;
  slices = 0;
  contextSwitches = 0;
  /** ms (absolute) when this pCPU last changed vCPU (for switches/s). */
  lastVcpu: Vcpu | undefined;
}

export class Accounting {
  readonly pcpus: PcpuAccounting[];
  readonly since = performance.timeOrigin + performance.now();

  constructor(nrPcpus: number) {
    this.pcpus = Array.from({ length: nrPcpus }, () => new PcpuAccounting());
  }

  /** A run of v on pCPU p ended. */
  ran(p: number, v: Vcpu, ns: number, executed: number): void {
    const a = this.pcpus[p]!;
    v.cpuTimeNs += ns;
    v.instructions += executed;
    a.guestNs += ns;
    a.slices++;
    if (a.lastVcpu !== v) {
      a.contextSwitches++;
      v.dom.contextSwitches++;
      a.lastVcpu = v;
    }
  }

  get contextSwitches(): number {
    return this.pcpus.reduce((n, a) => n + a.contextSwitches, 0);
  }

  /** Snapshot for measuring an interval: guest ns per pCPU, switches, and the wall clock. */
  snapshot(): { at: number; guestNs: number[]; switches: number; slices: number } {
    return {
      at: performance.timeOrigin + performance.now(),
      guestNs: this.pcpus.map((a) => a.guestNs),
      switches: this.contextSwitches,
      slices: this.pcpus.reduce((n, a) => n + a.slices, 0),
    };
  }
}
