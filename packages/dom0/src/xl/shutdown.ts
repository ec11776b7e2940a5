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
  await requestShutdown(ctx, domid, reason, opts.force ?? false);
  if (opts.wait) {
    process.stderr.write(`Waiting for 1 domains\n`);
    await waitForShutdown(ctx, domid);
  }
}

/**
 * `xl shutdown -a`: every guest (xl: every domain but dom0; xenbox leaves the
 * stack's own service domains to `xenbox down`, and stub domains go with
 * their guests), then with -w wait for all of them.
 */
export async function xlShutdownAll(ctx: XlContext, reason: 'poweroff' | 'reboot', opts: { wait?: boolean; force?: boolean }): Promise<void> {
  const guests = (await ctx.hv.call('sysctl.getdomaininfolist', {})).filter((d) => d.kind === 'pvh' || d.kind === 'hvm');
  let failed = 0;
  for (const g of guests) {
    await requestShutdown(ctx, g.domid, reason, opts.force ?? false).catch((e: Error) => {
      failed++;
      process.stderr.write(`${g.name}: ${e.message}\n`);
    });
  }
  if (opts.wait) {
    process.stderr.write(`Waiting for ${guests.length} domains\n`);
    await Promise.all(guests.map((g) => waitForShutdown(ctx, g.domid)));
  }
  if (failed) throw new XenError('EIO', `${failed} of ${guests.length} domains could not be asked to shut down`);
}

async function requestShutdown(ctx: XlContext, domid: DomId, reason: 'poweroff' | 'reboot', force: boolean): Promise<void> {
  const xs = await XenstoreClient.connectRunDir(ctx.runDir, { timeoutMs: 5000 }).catch(() => null);
  try {
    if (await hasPvControl(xs, domid, reason)) {
      await xs!.write(`${domainPath(domid)}/control/shutdown`, reason);
    } else if (force) {
      await ctx.hv.call('domctl.shutdown', { domid, reason });
    } else {
      throw new XenError('EOPNOTSUPP', 'PV control interface not available: external graceful shutdown not possible.\nUse "-F" to fallback to ACPI power event.');
    }
  } finally {
    xs?.close();
  }
}

/** -w: until the domain has shut down or is gone. */
async function waitForShutdown(ctx: XlContext, domid: DomId): Promise<void> {
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
