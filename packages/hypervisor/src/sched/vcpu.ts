/**
 * A vCPU as the scheduler sees it: Xen's runstates (running, runnable,
 * blocked, offline) plus the domain being paused, where it runs, affinity
 * and accounting.  The architectural state itself is the VcpuState
 * SharedArrayBuffer that the pCPU workers run.
 */
import type { VcpuRunState } from '@xenbox/abi';
import type { VcpuState } from '../arch/riscv/vcpu-state.js';
import { Affinity } from './affinity.js';
import type { SchedDomain } from './sched-domain.js';

/** Why a vCPU is blocked (Xen: _VPF_blocked), or undefined. */
export type BlockReason = 'wfi' | 'hypercall' | 'mmio';
/** Why a vCPU is down (Xen: _VPF_down): not started by SBI HSM, stopped, or taken offline by vcpu-set. */
export type DownReason = 'hsm' | 'admin';

export class Vcpu {
  blocked: BlockReason | undefined;
  down: DownReason | undefined;
  /** pCPU it runs on (or is handed to), or -1. */
  pcpu = -1;
  /** pCPU it last ran on (xl vcpu-list CPU column), -1 if never. */
  lastPcpu = -1;
  /** When the current stint on a pCPU started (ms), for ratelimit. */
  runStart = 0;
  cpuTimeNs = 0;
  instructions = 0;
  /** Token of the current wait for a wake-up (stale waits ignore themselves). */
  waitToken = 0;
  /** Set by SCHEDOP_yield: skip it once if anyone else can run (credit2.c: CSFLAG_unit_yield). */
  yielded = false;
  /** Absolute ms when it was last woken by an interrupt (wake-up latency), 0 if not pending. */
  wokenAt = 0;
  /** Absolute ms of its next timer interrupt while blocked in WFI (Infinity if none). */
  timerAt = Infinity;
  affinity = new Affinity();
  /** The scheduler's own per-vCPU data (csched2_unit, rt_unit, null's assignment). */
  priv: unknown;

  constructor(readonly dom: SchedDomain, readonly id: number, readonly state: VcpuState) {}

  get key(): string {
    return `${this.dom.domid}.${this.id}`;
  }

  /** Could run if given a pCPU (Xen: unit_runnable()). */
  get runnable(): boolean {
    return this.blocked === undefined && this.down === undefined && this.dom.pauseCount === 0 && !this.dom.dying && !this.dom.shutdown;
  }

  get onCpu(): boolean {
    return this.pcpu >= 0;
  }

  get runState(): VcpuRunState {
    if (this.down) return 'offline';
    if (this.onCpu) return 'running';
    if (this.dom.pauseCount > 0) return 'paused';
    if (this.blocked) return 'blocked';
    return 'runnable';
  }
}
