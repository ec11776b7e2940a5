/**
 * A guest's memory as the toolstack manages it (tools/libs/light/libxl_mem.c,
 * libxl_dom.c libxl__build_post):
 *
 *   /local/domain/<d>/memory/static-max   maxmem (KiB): the most it may ever have
 *   /local/domain/<d>/memory/target       what its balloon driver should hold (KiB)
 *
 * `xl mem-set` moves the target, and (enforce) sets the hypervisor's max_mem
 * to target + LIBXL_MAXMEM_CONSTANT; the guest's balloon driver gives pages
 * back or takes them (XENMEM_decrease_reservation / populate_physmap) and
 * `xl list` shows the result.  `xl mem-max` moves static-max and max_mem.
 */
import { XenError, type DomId } from '@xenbox/abi';
import type { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';

/** libxl_internal.h: slack added to max_mem over the target. */
export const LIBXL_MAXMEM_CONSTANT_KB = 1024;

const memDir = (domid: DomId) => `/local/domain/${domid}/memory`;

/** At build time: static-max and target (libxl__build_post / libxl__domain_build writes them). */
export async function writeMemoryNodes(xs: XenstoreClient, domid: DomId, targetKb: number, staticMaxKb: number): Promise<void> {
  await xs.transaction(async (t) => {
    await t.write(`${memDir(domid)}/static-max`, String(staticMaxKb));
    await t.write(`${memDir(domid)}/target`, String(targetKb));
    await t.write(`${memDir(domid)}/videoram`, '-1');
  });
}

async function readKb(xs: XenstoreClient, domid: DomId, key: string): Promise<number> {
  const v = await xs.tryRead(`${memDir(domid)}/${key}`);
  if (v === undefined || !/^\d+$/.test(v)) throw new XenError('ENOENT', `cannot get memory info from ${memDir(domid)}/${key}`);
  return Number(v);
}

/** libxl_set_memory_target(..., relative = 0, enforce = 1), as `xl mem-set` calls it. */
export async function setMemoryTarget(hv: HypervisorConnection, xs: XenstoreClient, domid: DomId, targetKb: number): Promise<void> {
  if (domid === 0) throw new XenError('EPERM', "xenbox's Domain-0 is the toolstack process and has no balloon");
  const staticMax = await readKb(xs, domid, 'static-max');
  if (targetKb > staticMax) throw new XenError('EINVAL', `memory_dynamic_max must be less than or equal to memory_static_max (${targetKb} KiB > ${staticMax} KiB)`);
  if (targetKb < 4096) throw new XenError('EINVAL', `new target ${targetKb} KiB is below the 4 MiB a guest needs`);
  await hv.call('domctl.max_mem', { domid, max_memkb: targetKb + LIBXL_MAXMEM_CONSTANT_KB });
  await xs.write(`${memDir(domid)}/target`, String(targetKb));
}

/** libxl_domain_setmaxmem, as `xl mem-max` calls it. */
export async function setMaxMemory(hv: HypervisorConnection, xs: XenstoreClient, domid: DomId, maxKb: number): Promise<void> {
  const target = await readKb(xs, domid, 'target');
  if (maxKb < target) throw new XenError('EINVAL', `memory_static_max must be greater than or equal to memory_dynamic_max (${maxKb} KiB < target ${target} KiB)`);
  await xs.write(`${memDir(domid)}/static-max`, String(maxKb));
  await hv.call('domctl.max_mem', { domid, max_memkb: maxKb + LIBXL_MAXMEM_CONSTANT_KB });
}

/** xl_utils.c parse_mem_size_kb: a number with an optional b/k/m/g/t suffix, megabytes by default; null if malformed. */
export function parseMemSizeKb(text: string): number | null {
  const m = /^(-?\d+)([bkmgtBKMGT]?)$/.exec(text);
  if (!m) return null;
  let kb = Number(m[1]);
  switch (m[2]!.toLowerCase()) {
    case 't':
      kb *= 1024 ** 3;
      break;
    case 'g':
      kb *= 1024 ** 2;
      break;
    case '':
    case 'm':
      kb *= 1024;
      break;
    case 'k':
      break;
    case 'b':
      kb = Math.floor(kb / 1024);
      break;
  }
  return kb < 0 ? null : kb;
}

/** libxl_domain_rename: the name in xenstore (home and /vm) and in the hypervisor's list. */
export async function renameDomain(hv: HypervisorConnection, xs: XenstoreClient, domid: DomId, name: string): Promise<void> {
  const list = await hv.call('sysctl.getdomaininfolist', {});
  const clash = list.find((d) => d.name === name && d.domid !== domid);
  if (clash) throw new XenError('EEXIST', `domain with name "${name}" already exists.`);
  await hv.call('domctl.rename', { domid, name });
  const vm = await xs.tryRead(`/local/domain/${domid}/vm`);
  await xs.transaction(async (t) => {
    await t.write(`/local/domain/${domid}/name`, name);
    if (vm) await t.write(`${vm}/name`, name);
  });
}
