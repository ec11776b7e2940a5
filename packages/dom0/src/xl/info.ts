/**
 * `xl info`: `key<padded to 23> : value` lines in xl's order
 * (tools/xl/xl_info.c, print_info()).  Fields that describe x86 hardware
 * xenbox does not have print what a RISC-V host without them would.
 */
import { hostname, release } from 'node:os';
import type { PhysInfo, XenVersionReply } from '@xenbox/abi';

const PAGE_KIB = 4;

export interface InfoInput {
  physinfo: PhysInfo;
  version: XenVersionReply;
  scheduler: string;
}

export function infoLines({ physinfo: p, version: v, scheduler }: InfoInput): Array<[string, string]> {
  const mib = (pages: number) => String(Math.floor((pages * PAGE_KIB) / 1024));
  const mhz = `${Math.floor(p.cpu_khz / 1000)}.${String(p.cpu_khz % 1000).padStart(3, '0')}`;
  return [
    ['host', hostname()],
    ['release', release()],
    ['version', `xenbox (Node ${process.version})`],
    ['machine', 'riscv64'],
    ['nr_cpus', String(p.nr_cpus)],
    ['max_cpu_id', String(p.nr_cpus - 1)],
    ['nr_nodes', String(p.nr_nodes)],
    ['cores_per_socket', String(p.cores_per_socket)],
    ['threads_per_core', String(p.threads_per_core)],
    ['cpu_mhz', mhz],
    ['hw_caps', Array(8).fill('00000000').join(':')],
    ['virt_caps', p.capabilities.join(' ')],
    ['total_memory', mib(p.total_pages)],
    ['free_memory', mib(p.free_pages)],
    ['sharing_freed_memory', '0'],
    ['sharing_used_memory', '0'],
    ['outstanding_claims', '0'],
    ['free_cpus', '0'],
    ['xen_major', String(v.major)],
    ['xen_minor', String(v.minor)],
    ['xen_extra', v.extra],
    ['xen_version', `${v.major}.${v.minor}${v.extra}`],
    ['xen_caps', p.xen_caps],
    ['xen_scheduler', scheduler],
    ['xen_pagesize', '4096'],
    ['platform_params', 'virt_start=0x0'],
    ['xen_changeset', v.implementation],
    ['xen_commandline', ''],
    ['cc_compiler', `node ${process.version}`],
    ['cc_compile_by', 'xenbox'],
    ['cc_compile_domain', ''],
    ['cc_compile_date', ''],
    ['build_id', ''],
    ['xend_config_format', '4'],
  ];
}

/** With a field name, only that field's value (xl info FIELD). */
export function formatInfo(lines: Array<[string, string]>, field?: string): string {
  if (field) {
    const hit = lines.find(([k]) => k === field);
    return hit ? `${hit[1]}\n` : '';
  }
  return lines.map(([k, v]) => `${k.padEnd(23)}: ${v}\n`).join('');
}
