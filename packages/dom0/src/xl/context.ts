/**
 * What every `xl` command starts from (tools/xl/xl.c): a connection to the
 * hypervisor as dom0, found through $XENBOX_RUN_DIR (default ./run in the
 * repository), and find_domain(), which takes a domid or a name.
 */
import { readFileSync } from 'node:fs';
import { XenError, isValidDomId, runDirLayout, type DomId, type DomainInfo } from '@xenbox/abi';
import { HypervisorConnection, XenstoreClient } from '@xenbox/libxen';
import { defaultRunDir } from '../run-dir-default.js';

export interface XlContext {
  runDir: string;
  hv: HypervisorConnection;
  close(): Promise<void>;
}

/** Connect as dom0: reading dom0's token is xl's equivalent of opening /dev/xen/privcmd. */
export async function openXlContext(runDir = defaultRunDir()): Promise<XlContext> {
  const layout = runDirLayout(runDir);
  let token: string;
  try {
    token = readFileSync(layout.dom0Token, 'utf8').trim();
  } catch {
    throw new XenError('ENOENT', `no hypervisor running in ${runDir} (start one with 'xenbox up'; set XENBOX_RUN_DIR to use another run dir)`);
  }
  const hv = await HypervisorConnection.connect({ runDir, domid: 0, token, timeoutMs: 10_000 });
  return { runDir, hv, close: () => hv.close() };
}

/** xl's find_domain(): a number is a domid, anything else a name. */
export async function findDomain(ctx: XlContext, spec: string): Promise<DomainInfo> {
  const list = await ctx.hv.call('sysctl.getdomaininfolist', {});
  const byId = /^\d+$/.test(spec) ? Number(spec) : NaN;
  const d = isValidDomId(byId) ? list.find((x) => x.domid === byId) : list.find((x) => x.name === spec);
  if (!d) throw new XenError('ESRCH', `Domain '${spec}' does not exist.`);
  return d;
}

export async function findDomid(ctx: XlContext, spec: string): Promise<DomId> {
  return (await findDomain(ctx, spec)).domid;
}

/** Run `fn` with a xenstore connection (xs_open), closed afterwards; ENOTCONN naming why if xenstored cannot be reached. */
export async function withXenstore<T>(ctx: XlContext, fn: (xs: XenstoreClient) => Promise<T>): Promise<T> {
  const xs = await XenstoreClient.connectRunDir(ctx.runDir, { timeoutMs: 10_000 }).catch((e: Error) => {
    throw new XenError('ENOTCONN', `cannot reach xenstored: ${e.message}`);
  });
  try {
    return await fn(xs);
  } finally {
    xs.close();
  }
}
