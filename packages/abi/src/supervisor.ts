/**
 * The supervisor's control protocol: what `xenbox status|kill|restart|down`
 * send to a running `xenbox up` over ipc://$RUN_DIR/xenbox.sock, framed like
 * hypercalls (see frame.ts), and what a supervised process tells its
 * supervisor over the Node IPC channel it was started with.
 */
import type { DomId } from './domid.js';

export const SERVICE_STATES = ['starting', 'ready', 'restarting', 'stopping', 'stopped', 'failed'] as const;
export type ServiceState = (typeof SERVICE_STATES)[number];

export const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

export interface ServiceStatus {
  name: string;
  /** Which program embodies it: hypervisor, xenstored, xenconsoled, netback, blkback, stubdom. */
  kind: string;
  domid: DomId | null;
  pid: number | null;
  state: ServiceState;
  /** Milliseconds since the epoch when the current incarnation started, or null. */
  startedAt: number | null;
  restarts: number;
  /** Why it last stopped or failed, if it did. */
  lastExit: string | null;
  /**
   * Recovery times of its restarts after a death, in ms: from the death being
   * noticed (or the kill being requested) to the new incarnation reporting
   * ready.  The most recent RECOVERY_HISTORY of them, oldest first.
   */
  recoveryMs: number[];
}

/** How many recovery times a service keeps for `xenbox status --json`. */
export const RECOVERY_HISTORY = 1000;

export interface SupervisorCalls {
  status: { args: Record<string, never>; reply: { runDir: string; pid: number; services: ServiceStatus[] } };
  kill: { args: { name: string }; reply: { name: string; pid: number } };
  restart: { args: { name: string }; reply: { name: string } };
  down: { args: Record<string, never>; reply: null };
}
export type SupervisorOp = keyof SupervisorCalls;

/** Sent by a supervised process on its IPC channel (process.send). */
export type ProcessNotice =
  | { type: 'ready'; domid: DomId | null }
  | { type: 'fatal'; message: string };
