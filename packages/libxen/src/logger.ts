/**
 * Every xenbox process logs pino JSON to its own file, $RUN_DIR/logs/<name>.log
 * (DESIGN §12).  `xenbox logs` pretty-prints them.
 */
import { mkdirSync, openSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { runDirLayout } from '@xenbox/abi';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** Extra fields on every line (domid, ...). */
  base?: Record<string, unknown>;
  level?: string;
}

/** A logger writing to $RUN_DIR/logs/<name>.log, created mode 0700 with the run dir. */
export function createLogger(runDir: string, name: string, opts: LoggerOptions = {}): Logger {
  const layout = runDirLayout(runDir);
  mkdirSync(layout.logs, { recursive: true, mode: 0o700 });
  // Opened here, synchronously, so the logger is usable (and flushable) at once,
  // even by a process that exits a moment later.
  const fd = openSync(layout.logFile(name), 'a', 0o600);
  const dest = pino.destination({ fd, sync: false });
  return pino(
    {
      name,
      level: opts.level ?? process.env.XENBOX_LOG_LEVEL ?? 'info',
      base: { pid: process.pid, ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    dest,
  );
}

/** A logger that drops everything: for library code used outside a stack (tests, one-shot CLIs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** Write out what the logger still buffers; call before exiting. */
export function flushLogger(log: Logger): void {
  try {
    log.flush();
  } catch {
    // A logger whose destination is not open yet has nothing to flush.
  }
}
