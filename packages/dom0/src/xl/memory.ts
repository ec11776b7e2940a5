/**
 * `xl mem-set`, `xl mem-max` and `xl rename` (tools/xl/xl_mem.c,
 * xl_misc.c): messages and exit codes as xl's.
 */
import { parseMemSizeKb, renameDomain, setMaxMemory, setMemoryTarget } from '../libxl/domain-memory.js';
import { loadUserdata, storeUserdata } from '../libxl/userdata.js';
import { findDomid, withXenstore, type XlContext } from './context.js';
import { XlFailure } from './failure.js';

function memKb(mem: string): number {
  const kb = parseMemSizeKb(mem);
  if (kb === null) throw new XlFailure(`invalid memory size: ${mem}`);
  return kb;
}

export async function xlMemSet(ctx: XlContext, dom: string, mem: string): Promise<void> {
  const domid = await findDomid(ctx, dom);
  const kb = memKb(mem);
  await withXenstore(ctx, (xs) =>
    setMemoryTarget(ctx.hv, xs, domid, kb).catch((e: Error) => {
      throw new XlFailure(`libxl: error: ${e.message}\ncannot set domid ${domid} memory target to : ${mem}`);
    }),
  );
}

export async function xlMemMax(ctx: XlContext, dom: string, mem: string): Promise<void> {
  const domid = await findDomid(ctx, dom);
  const kb = memKb(mem);
  await withXenstore(ctx, (xs) =>
    setMaxMemory(ctx.hv, xs, domid, kb).catch((e: Error) => {
      throw new XlFailure(`libxl: error: ${e.message}\ncannot set domid ${domid} static max memory to : ${mem}`);
    }),
  );
}

export async function xlRename(ctx: XlContext, dom: string, name: string): Promise<void> {
  const domid = await findDomid(ctx, dom);
  await withXenstore(ctx, (xs) =>
    renameDomain(ctx.hv, xs, domid, name).catch((e: Error) => {
      throw new XlFailure(`libxl: error: ${e.message}\nCan't rename domain '${dom}'.`);
    }),
  );
  const cfg = loadUserdata(ctx.runDir, domid);
  if (cfg) storeUserdata(ctx.runDir, domid, { ...cfg, name });
}
