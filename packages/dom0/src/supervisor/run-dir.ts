/**
 * Owning a run directory: one supervisor per run dir, and recovery of a run
 * dir whose supervisor was killed (its pid file is stale; its children may
 * still be alive, its sockets are left behind).
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { XenError, runDirLayout } from '@xenbox/abi';

/** Set on every supervised child, naming its run dir: how leftovers are found after a supervisor died. */
export const ENV_SUPERVISED = 'XENBOX_SUPERVISED';

/**
 * Whether `pid` is a running process.  A zombie (exited, not yet reaped: a
 * detached supervisor's parent is often an init that never reaps) is not.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

export function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** The pid of the live supervisor of `runDir`, or null. */
export function liveSupervisor(runDir: string): number | null {
  const pid = readPid(runDirLayout(runDir).supervisorPid);
  return pid !== null && isAlive(pid) ? pid : null;
}

/** EBUSY if a live supervisor (other than this process) holds `runDir`. */
export function refuseIfRunning(runDir: string): void {
  const live = liveSupervisor(runDir);
  if (live !== null && live !== process.pid) {
    throw new XenError('EBUSY', `a stack is already running in ${runDir} (supervisor pid ${live}); use 'xenbox status' or 'xenbox down --run-dir ${runDir}'`);
  }
}

/** Processes (other than us) started by a supervisor of `runDir`, found through /proc. */
export function leftoverProcesses(runDir: string): number[] {
  const marker = `${ENV_SUPERVISED}=${resolve(runDir)}`;
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const e of entries) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker)) found.push(pid);
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return found;
}

/** Sockets and credentials that only make sense while a stack runs. */
export function removeRuntimeFiles(runDir: string): void {
  const l = runDirLayout(runDir);
  for (const f of [l.hypervisorSocket, l.supervisorSocket, l.xenstoredSocket, l.xenstoredZmqSocket, l.dom0Token, l.supervisorPid]) rmSync(f, { force: true });
}

export interface Recovery {
  stalePid: number | null;
  killed: number[];
}

/**
 * Take the run dir for a new supervisor: create it (mode 0700), refuse if a
 * live supervisor holds it, clean up after a dead one, write our pid file.
 */
export function acquireRunDir(runDir: string): Recovery {
  const l = runDirLayout(runDir);
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  if ((statSync(runDir).mode & 0o077) !== 0) chmodSync(runDir, 0o700);
  refuseIfRunning(runDir);
  const recovery: Recovery = { stalePid: existsSync(l.supervisorPid) ? readPid(l.supervisorPid) : null, killed: [] };
  for (const pid of leftoverProcesses(runDir)) {
    try {
      process.kill(pid, 'SIGKILL');
      recovery.killed.push(pid);
    } catch {
      // Exited meanwhile.
    }
  }
  removeRuntimeFiles(runDir);
  // 'wx': of two supervisors racing for the same dir, exactly one creates the pid file.
  let fd: number;
  try {
    fd = openSync(l.supervisorPid, 'wx', 0o600);
  } catch {
    throw new XenError('EBUSY', `another supervisor is starting in ${runDir}`);
  }
  writeSync(fd, `${process.pid}\n`);
  closeSync(fd);
  return recovery;
}
