/** `xenbox status` output: one row per service, columns aligned like xl's. */
import type { ServiceStatus } from '@xenbox/abi';

/** Uptime the way `xl uptime` prints it: "[N day(s), ]H:MM:SS". */
export function formatUptime(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const hms = `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return days ? `${days} day${days > 1 ? 's' : ''}, ${hms}` : hms;
}

export function formatStatusTable(services: ServiceStatus[], now = Date.now()): string {
  const rows = [['NAME', 'DOMID', 'PID', 'STATE', 'UPTIME', 'RESTARTS']];
  for (const s of services) {
    const up = s.state === 'ready' && s.startedAt !== null ? formatUptime(now - s.startedAt) : '-';
    rows.push([s.name, s.domid === null ? '-' : String(s.domid), s.pid === null ? '-' : String(s.pid), s.state, up, String(s.restarts)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((c, i) => (i === 0 || i === 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}
