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
}
