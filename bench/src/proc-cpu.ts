/**
 * CPU time spent by a set of processes over a stretch of a benchmark: this
 * process (process.cpuUsage) and children by pid (utime + stime from
 * /proc/PID/stat, proc(5), in clock ticks).  All threads count: V8's GC and
 * compiler workers and ZeroMQ's I/O thread included.
 *
 * Why: on this shared 2-core machine a wall-clock figure moves with the
 * other engineers' load (the same raw baseline varies 2x between runs); the
 * CPU a round trip costs moves much less, so it says where a ratio comes
 * from (bench/RESULTS.md "## gnttab", "## evtchn").
 */
import { readFileSync } from 'node:fs';

/** USER_HZ: the unit of /proc/PID/stat times (100 on every Linux port in use). */
const CLOCK_TICKS_PER_S = 100;

/** utime + stime of `pid`, in µs. */
export function childCpuUs(pid: number): number {
  // Fields after the parenthesised comm: state is field 3, utime 14, stime 15 (proc(5)).
  const rest = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = rest.slice(rest.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS_PER_S;
}

export interface CpuMeter {
  /** µs of CPU used since start by this process and the children, in total. */
  stop(): number;
}

/** Start measuring this process's CPU and that of `pids`. */
export function startCpuMeter(pids: readonly number[]): CpuMeter {
  const self0 = process.cpuUsage();
  const kids0 = pids.map(childCpuUs);
  return {
    stop() {
      const self = process.cpuUsage(self0);
      const kids = pids.reduce((sum, pid, i) => sum + childCpuUs(pid) - kids0[i]!, 0);
      return self.user + self.system + kids;
    },
  };
}
