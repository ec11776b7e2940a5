/**
 * `xl shutdown` / `xl reboot` (tools/xl/xl_vmcontrol.c, libxl_domain_shutdown):
 * ask the guest through its PV control interface — xenstore
 * control/shutdown — if it has one (control/feature-poweroff or
 * feature-reboot = 1); otherwise only with -F, by a hypervisor-initiated
 * shutdown (SCHEDOP_remote_shutdown), as xl falls back to an ACPI event.
 */
import { XenError, type DomId } from '@xenbox/abi';
import { XenstoreClient } from '@xenbox/libxen';
import { domainPath } from '../libxl/domain-xenstore.js';
import type { XlContext } from './context.js';

const WAIT_POLL_MS = 100;

async function hasPvControl(xs: XenstoreClient | null, domid: DomId, reason: 'poweroff' | 'reboot'): Promise<boolean> {
  if (!xs) return false;
  return (await xs.tryRead(`${domainPath(domid)}/control/feature-${reason}`)) === '1';
}

export async function xlShutdown(ctx: XlContext, domid: DomId, reason: 'poweroff' | 'reboot', opts: { wait?: boolean; force?: boolean }): Promise<void> {
  const xs = await XenstoreClient.connectRunDir(ctx.runDir, { timeoutMs: 5000 }).catch(() => null);
  try {
    if (await hasPvControl(xs, domid, reason)) {
      await xs!.write(`${domainPath(domid)}/control/shutdown`, reason);
    } else if (opts.force) {
      await ctx.hv.call('domctl.shutdown', { domid, reason });
    } else {
      throw new XenError('EOPNOTSUPP', 'PV control interface not available: external graceful shutdown not possible.\nUse "-F" to fallback to ACPI power event.');
    }
  } finally {
    xs?.close();
  }
  if (opts.wait) await waitForShutdown(ctx, domid);
}

/** -w: until the domain has shut down or is gone. */
async function waitForShutdown(ctx: XlContext, domid: DomId): Promise<void> {
  process.stderr.write(`Waiting for 1 domains\n`);
  for (;;) {
    try {
      const info = await ctx.hv.call('domctl.getdomaininfo', { domid });
      if (info.shutdown !== null) {
        process.stderr.write(`Domain ${domid} has been shut down, reason code ${info.shutdownCode}\n`);
        return;
      }
      if (info.dying) break;
    } catch (e) {
      if (e instanceof XenError && e.errno === 'ESRCH') break;
      throw e;
    }
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
  process.stderr.write(`Domain ${domid} has been destroyed.\n`);
}
