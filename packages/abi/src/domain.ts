/**
 * What a domain is, as the hypervisor reports it (the subset of
 * xen_domctl_getdomaininfo / libxl_dominfo the stack uses so far).
 */
import type { DomId } from './domid.js';

/**
 * dom0 is the control domain.  A service domain is a process that embodies a
 * Xen service VM (xenstored, netback, blkback); a stubdom serves one HVM
 * guest; pvh and hvm domains are RISC-V guests run by the hypervisor's vCPUs.
 */
export const DOMAIN_KINDS = ['dom0', 'service', 'stubdom', 'pvh', 'hvm'] as const;
export type DomainKind = (typeof DOMAIN_KINDS)[number];

/** Kinds whose code is an OS process holding a connection, not guest code. */
export const PROCESS_DOMAIN_KINDS: readonly DomainKind[] = ['dom0', 'service', 'stubdom'];

/** Shutdown reasons, xen/include/public/sched.h SHUTDOWN_*. */
export const SHUTDOWN_REASONS = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'] as const;
export type ShutdownReason = (typeof SHUTDOWN_REASONS)[number];

export interface DomainInfo {
  domid: DomId;
  name: string;
  uuid: string;
  kind: DomainKind;
  /** Domain this one has privilege over (a stub domain's guest), or null. */
  target: DomId | null;
  /** Connections currently authenticated as this domain. */
  connections: number;
  paused: boolean;
  dying: boolean;
  shutdown: ShutdownReason | null;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** Creation flags (XEN_DOMCTL_CDF_*, as names). */
  flags: DomainCreateFlag[];
  /** Pages populated (tot_pages) and the limit (max_pages, from max_mem). */
  totPages: number;
  maxPages: number;
  /** Grant frames and event-channel ports in use. */
  grantFrames: number;
  evtchnPorts: number;
  maxVcpus: number;
  vcpusOnline: number;
  /** Run time of all its vCPUs (cpu_time of getdomaininfo), nanoseconds. */
  cpuTimeNs: number;
  /** `xl list`'s six state letters: r b p s, the shutdown reason ("-rscwS"), d; '-' where clear. */
  state: string;
  /** SHUTDOWN_* code of `shutdown`, or null. */
  shutdownCode: number | null;
}

/** XEN_DOMCTL_CDF_* that xenbox understands (domctl.h). */
export const DOMAIN_CREATE_FLAGS = ['hvm', 'hap', 's3_integrity', 'oos_off', 'xs_domain', 'iommu'] as const;
export type DomainCreateFlag = (typeof DOMAIN_CREATE_FLAGS)[number];

/** SHUTDOWN_* numbers, sched.h. */
export const SHUTDOWN_CODES: Record<ShutdownReason, number> = {
  poweroff: 0,
  reboot: 1,
  suspend: 2,
  crash: 3,
  watchdog: 4,
  soft_reset: 5,
};

/** Default and most vCPUs a domain may have (max_vcpus). */
export const MAX_VCPUS_DEFAULT = 1;
export const MAX_VCPUS_LIMIT = 128;

/** sysctl physinfo: what `xl info` prints about the host. */
export interface PhysInfo {
  nr_cpus: number;
  threads_per_core: number;
  cores_per_socket: number;
  nr_nodes: number;
  cpu_khz: number;
  /** Pages of host memory the hypervisor may hand out (--host-mem), and how many are free. */
  total_pages: number;
  free_pages: number;
  scrub_pages: number;
  capabilities: string[];
  /** xen_caps string, as `xl info` shows it. */
  xen_caps: string;
}
