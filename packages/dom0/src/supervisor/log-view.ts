/**
 * `xenbox logs`: pino's JSON lines, printed for people.
 *
 *   02:31:07.412 INFO  netback[d3] ready
 *   02:31:09.001 ERROR xenbox service died service=netback exit="killed by SIGKILL"
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'domid']);

export interface LogLine {
  time: string;
  text: string;
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /^[\w./:@-]+$/.test(v) ? v : JSON.stringify(v);
  if (v && typeof v === 'object' && 'message' in v && 'type' in v) return JSON.stringify((v as { message: unknown }).message);
  return JSON.stringify(v);
}

/** One JSON log line as a readable line; lines that are not JSON pass through. */
export function prettyLogLine(raw: string): LogLine {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return { time: '', text: raw };
  }
  const time = typeof o.time === 'string' ? o.time : '';
  const level = (LEVELS[o.level as number] ?? String(o.level)).padEnd(5);
  const who = `${o.name ?? '?'}${o.domid !== undefined ? `[d${o.domid}]` : ''}`;
  const extras = Object.entries(o)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${formatValue(v)}`)
    .join(' ');
  return { time, text: `${time.slice(11, 23)} ${level} ${who} ${o.msg ?? ''}${extras ? ' ' + extras : ''}` };
}

export function logFiles(logDir: string, name?: string): string[] {
  if (name) {
    const f = join(logDir, `${name}.log`);
    if (!existsSync(f)) throw new Error(`no log for '${name}' in ${logDir} (have: ${listNames(logDir).join(', ') || 'none'})`);
    return [f];
  }
  return listNames(logDir).map((n) => join(logDir, `${n}.log`));
}

function listNames(logDir: string): string[] {
  if (!existsSync(logDir)) return [];
  return readdirSync(logDir).filter((f) => f.endsWith('.log')).map((f) => basename(f, '.log')).sort();
}

/** Every line of the given files, merged in time order. */
export function readLogs(files: string[]): string[] {
  const lines: LogLine[] = [];
  for (const f of files) for (const raw of readFileSync(f, 'utf8').split('\n')) if (raw) lines.push(prettyLogLine(raw));
  return lines.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0)).map((l) => l.text);
}

/** Print lines appended to `files` from now on, until the process is stopped. */
export function followLogs(files: string[], print: (line: string) => void, intervalMs = 200): () => void {
  const offsets = new Map(files.map((f) => [f, statSync(f).size]));
  const partial = new Map<string, string>();
  const timer = setInterval(() => {
    for (const f of files) {
      const size = statSync(f).size;
      const from = offsets.get(f) ?? 0;
      if (size <= from) continue;
      const fd = openSync(f, 'r');
      const buf = Buffer.alloc(size - from);
      readSync(fd, buf, 0, buf.length, from);
      closeSync(fd);
      offsets.set(f, size);
      const text = (partial.get(f) ?? '') + buf.toString('utf8');
      const parts = text.split('\n');
      partial.set(f, parts.pop() ?? '');
      for (const raw of parts) if (raw) print(prettyLogLine(raw).text);
    }
  }, intervalMs);
  return () => clearInterval(timer);
}
