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
  /** One record per restart after a death, the most recent RECOVERY_HISTORY of them, oldest first. */
  restartMetrics: RestartMetrics[];
}

/**
 * What one restart of a driver domain cost its guests (issue #10, DESIGN
 * §11).  Times are in ms from `at`, when the kill was requested or the
 * death noticed; null until it happens (a guest doing no I/O never gives
 * a firstIoMs).
 */
export interface RestartMetrics {
  /** ms since the epoch. */
  at: number;
  /** The new incarnation reported ready. */
  readyMs: number | null;
  /** Every device of the dead incarnation was Connected again in the new one. */
  connectedMs: number | null;
  /** The new incarnation completed a request of one of those devices (the first guest I/O after the restart). */
  firstIoMs: number | null;
  /**
   * Requests the frontends had on their new rings before the first answer:
   * what they issued again (blkfront re-queues everything in flight at
   * reconnect, Linux blkif_recover).  null for netback, whose frontends
   * re-issue nothing (a lost frame is the network's business).
   */
  reissued: number | null;
  /** Devices moved to the new incarnation that a frontend was using (Connected when the old one died): the ones waited for. */
  devices: number;
}

/** How many recovery times a service keeps for `xenbox status --json`. */
export const RECOVERY_HISTORY = 1000;

export interface SupervisorCalls {
  status: { args: Record<string, never>; reply: { runDir: string; pid: number; services: ServiceStatus[] } };
  /** holdMs: keep it down that long before the restart (an experiment: "while netback is down"). */
  kill: { args: { name: string; holdMs?: number }; reply: { name: string; pid: number } };
  restart: { args: { name: string }; reply: { name: string } };
  down: { args: Record<string, never>; reply: null };
}
export type SupervisorOp = keyof SupervisorCalls;

/** Sent by a supervised process on its IPC channel (process.send). */
export type ProcessNotice =
  | { type: 'ready'; domid: DomId | null }
  | { type: 'fatal'; message: string }
  | DeviceNotice;

/**
 * A backend's word on one of its devices (`device` is "<kind>/<frontend
 * domid>/<devid>", as libxl names a device): it reached Connected, or it
 * answered its first request on that connection (`requestsBefore`: requests
 * taken off the ring before that first answer).
 */
export type DeviceNotice =
  | { type: 'device-connected'; device: string; at: number }
  | { type: 'device-first-io'; device: string; at: number; requestsBefore: number };

/** How a device is named in DeviceNotice and the supervisor's logs. */
export function deviceName(kind: string, frontend: DomId, devid: number): string {
  return `${kind}/${frontend}/${devid}`;
}
