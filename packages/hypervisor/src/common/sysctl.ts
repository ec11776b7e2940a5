/**
 * sysctl operations (xen/common/sysctl.c): physinfo, the domain list and
 * readconsole (`xl info`, `xl list`, `xl dmesg [-c]`).
 */
import { cpus } from 'node:os';
import { argObject, argOptBool, type PhysInfo } from '@xenbox/abi';
import type { Hypervisor } from '../hypervisor.js';
import type { HypercallTable } from './hypercall-table.js';

/** cpu_khz as the host reports it (MHz from /proc/cpuinfo via os.cpus()). */
function cpuKhz(): number {
  const mhz = cpus()[0]?.speed ?? 0;
  return mhz * 1000;
}

export function physinfo(hv: Hypervisor): PhysInfo {
  const nr = hv.guests.nrPcpus; // the scheduler's pCPUs (--pcpus), what guests can run on
  return {
    nr_cpus: nr,
    threads_per_core: 1,
    cores_per_socket: nr,
    nr_nodes: 1,
    cpu_khz: cpuKhz(),
    total_pages: hv.domains.host.totalPages,
    free_pages: hv.domains.host.freePages,
    scrub_pages: 0,
    capabilities: ['hvm', 'pv'],
    xen_caps: 'xen-3.0-riscv64 hvm-3.0-riscv64',
  };
}

export function sysctlOps(hv: Hypervisor): HypercallTable {
  return {
    'sysctl.getdomaininfolist': { priv: 'xs_priv', handle: () => hv.domains.all().map((d) => d.info()) },
    'sysctl.physinfo': { priv: 'priv', handle: () => physinfo(hv) },
    'console_io.read': {
      priv: 'priv',
      handle(_caller, raw) {
        const clear = argOptBool('console_io.read', argObject('console_io.read', raw), 'clear') ?? false;
        const text = hv.console.read();
        if (clear) hv.console.clear();
        return { text };
      },
    },
  };
}
