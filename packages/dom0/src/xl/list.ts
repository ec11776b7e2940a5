/**
 * `xl list`, `xl vm-list`, `xl uptime`: output byte for byte as tools/xl/xl_list.c
 * prints it, from the hypervisor's domain list.
 */
import type { DomainInfo } from '@xenbox/abi';

const c = (n: number, w: number) => String(n).padStart(w);

/** Memory as xl shows it: current_memkb / 1024 (pages are 4 KiB). */
export const memMiB = (d: DomainInfo) => Math.floor((d.totPages * 4) / 1024);

/** `%8.1f` of CPU seconds. */
const cpuSeconds = (d: DomainInfo) => (d.cpuTimeNs / 1e9).toFixed(1).padStart(8);

export function formatList(domains: DomainInfo[], verbose = false): string {
  let out = 'Name                                        ID   Mem VCPUs\tState\tTime(s)';
  if (verbose) out += '   UUID                            Reason-Code\tSecurity Label';
  out += '\n';
  for (const d of domains) {
    out += `${d.name.padEnd(40)} ${c(d.domid, 5)} ${c(memMiB(d), 5)} ${c(d.vcpusOnline, 5)}     ${d.state}  ${cpuSeconds(d)}`;
    if (verbose) {
      out += ` ${d.uuid}`;
      out += d.shutdownCode !== null ? ` ${d.shutdownCode.toString(16).padStart(8)}` : ` ${'-'.padStart(8)}`;
      out += ` ${'-'.padStart(16)}`;
    }
    out += '\n';
  }
  return out;
}

export function formatVmList(domains: DomainInfo[]): string {
  let out = 'UUID                                  ID    name\n';
  for (const d of domains) if (d.domid !== 0) out += `${d.uuid}  ${d.domid}    ${d.name.padEnd(30)}\n`;
  return out;
}

/** uptime_to_string() of xl_list.c. */
export function uptimeString(seconds: number, short: boolean): string {
  let up = Math.max(0, Math.floor(seconds));
  const day = Math.floor(up / 86400);
  up -= day * 86400;
  const hour = Math.floor(up / 3600);
  up -= hour * 3600;
  const min = Math.floor(up / 60);
  const sec = up - min * 60;
  const dayPart = day > 1 ? `${day} days, ` : day === 1 ? `${day} day, ` : '';
  const hm = `${String(hour).padStart(2)}:${String(min).padStart(2, '0')}`;
  return dayPart + (short ? hm : `${hm}:${String(sec).padStart(2, '0')}`);
}

function clock(now: Date): string {
  return [now.getHours(), now.getMinutes(), now.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

export function formatUptime(domains: DomainInfo[], short: boolean, now = new Date()): string {
  let out = short ? '' : `${'Name'.padEnd(33)} ${'ID'.padStart(4)} Uptime\n`;
  for (const d of domains) {
    const secs = (now.getTime() - d.createdAt) / 1000;
    out += short
      ? ` ${clock(now)} up ${uptimeString(secs, true)}, ${d.name} (${d.domid})\n`
      : `${d.name.padEnd(33)} ${c(d.domid, 4)} ${uptimeString(secs, false)}\n`;
  }
  return out;
}
