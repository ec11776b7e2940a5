/** The vCPU scheduler (DESIGN §6): see docs/sched.md. */
export { VcpuScheduler, type SchedHooks, type DomainSchedConfig, type VcpuSchedulerOptions, type HypercallResult } from './vcpu-scheduler.js';
export { Credit2 } from './credit2.js';
export { Rtds } from './rtds.js';
export { NullSched } from './null.js';
export { PcpuPool, PcpuChannel, type Pcpus } from './pcpu-pool.js';
export { CTL, CTL_BYTES, MBOX, type FromWorker, type SliceReport } from './slice-protocol.js';
