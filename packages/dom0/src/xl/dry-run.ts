/**
 * `xl -N`: dry runs that parse and print what xl would do, touching nothing
 * (tools/xl/xl.c dryrun_only).  Xen's own parser tests drive these:
 * check-xl-disk-parse (`xl -N block-attach 0 SPEC...`), check-xl-vif-parse
 * (`xl -N network-attach 0 SPEC...`), check-xl-vcpupin-parse
 * (`xl -N vcpu-pin 0 all SPEC`); see ../shared/reference/xl-parse-vectors.md.
 */
import { availableParallelism } from 'node:os';
import { diskToLibxlJson, parseDiskSpec } from '../xlcfg/disk-spec.js';
import { nicToLibxlJson, parseNicArgs } from '../xlcfg/vif-spec.js';
import { evenTopology, formatCpuMap, parseCpuList, type CpuTopology } from '../xlcfg/cpulist.js';

/** `xl -N block-attach DOM SPEC...`: `disk: {...}` as libxl's JSON, nothing attached. */
export function dryBlockAttach(specs: string[]): string {
  return diskToLibxlJson(parseDiskSpec(specs, { source: 'block-attach' }));
}

/** `xl -N network-attach DOM SPEC...`: `vif: {...}`. */
export function dryNetworkAttach(tokens: string[]): string {
  return nicToLibxlJson(parseNicArgs(tokens).nic);
}

/** `xl -N vcpu-pin DOM VCPU HARD`: `cpumap: ...` against the host's pCPUs (one NUMA node here). */
export function dryVcpuPin(hard: string, topo: CpuTopology = evenTopology(availableParallelism(), 1)): string {
  return `cpumap: ${formatCpuMap(parseCpuList(hard, topo))}\n`;
}
