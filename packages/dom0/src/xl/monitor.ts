/**
 * What `xl create` leaves behind: a small daemon per guest that waits for the
 * guest to shut down and then does what its config says (on_poweroff,
 * on_reboot, on_crash, on_watchdog, on_soft_reset), as xl's forked child does
 * in tools/xl/xl_vmcontrol.c (handle_domain_death).  It logs to
 * $RUN_DIR/logs/xl-<name>.log.
 *
 * Like real xl, it wakes on xenstore's @releaseDomain (xenstored fires it for
 * every shutdown and death it learns of through VIRQ_DOM_EXC) and then asks
 * the hypervisor for the domain's state; without an event it still looks
 * every MONITOR_FALLBACK_MS.  An HVM guest's monitor also watches its device
 * model process, which is no domain event, so it looks every MONITOR_POLL_MS.
 */
import { SHUTDOWN_CODES, XenError, type DomId, type DomainInfo, type ShutdownReason } from '@xenbox/abi';
import type { Logger } from '@xenbox/libxen';
import type { DomainConfig, ShutdownAction } from '../xlcfg/domain-config.js';
import { createGuest, destroyGuest, type CreateDeps } from '../libxl/domain-create.js';
import { deviceModelDied, stopDeviceModel } from '../libxl/hvm-builder.js';
import { keepMacs } from '../libxl/device-vif.js';
import { loadUserdata } from '../libxl/userdata.js';

export const MONITOR_POLL_MS = 100;
/** Longest a PVH guest's monitor sleeps without a @releaseDomain event (an event lost to a xenstored restart must not strand it). */
export const MONITOR_FALLBACK_MS = 2000;

/**
 * A guest that needs restarting more than this often within RESTART_WINDOW_MS
 * is left as it is (preserve) instead: a guest that crashes at boot would
 * otherwise spin the host forever.  (Real xl restarts without limit.)
 */
export const MAX_RESTARTS_IN_WINDOW = 10;
export const RESTART_WINDOW_MS = 60_000;

/** libxl_shutdown_reason -> the config's action for it. */
export function actionFor(cfg: DomainConfig, reason: ShutdownReason): ShutdownAction | 'suspend' {
  switch (reason) {
    case 'poweroff':
      return cfg.onPoweroff;
    case 'reboot':
      return cfg.onReboot;
    case 'crash':
      return cfg.onCrash;
    case 'watchdog':
      return cfg.onWatchdog;
    case 'soft_reset':
      return cfg.onSoftReset;
    case 'suspend':
      return 'suspend';
  }
}

async function infoOrGone(deps: CreateDeps, domid: DomId): Promise<DomainInfo | null> {
  try {
    return await deps.hv.call('domctl.getdomaininfo', { domid });
  } catch (e) {
    if (e instanceof XenError && e.errno === 'ESRCH') return null;
    throw e;
  }
}

/**
 * Watch `domid` until it is gone for good; restart it per config as many
 * times as it asks.  `reload` re-reads the config for a restart (xl re-uses
 * the config it was started with).
 */
/** The config to restart with: the file again, its NICs keeping the MACs the dying domain had (device-vif.ts keepMacs). */
function sameMacs(cfg: DomainConfig, previous: DomainConfig | null): DomainConfig {
  return { ...cfg, nics: keepMacs(cfg.nics, previous?.nics) };
}

export async function monitorGuest(deps: CreateDeps, firstDomid: DomId, reload: () => DomainConfig, log: Logger, configDir?: string): Promise<void> {
  let domid = firstDomid;
  let cfg = reload();
  const restarts: number[] = [];
  log.info({ dom: domid, domain: cfg.name }, 'waiting for the domain to shut down');
  const release = deps.xs ? await deps.xs.watch('@releaseDomain').catch(() => null) : null;
  try {
    await watchDomain();
  } finally {
    await release?.unwatch().catch(() => undefined);
  }

  async function watchDomain(): Promise<void> {
    for (;;) {
      if (release && cfg.type !== 'hvm') await release.next(MONITOR_FALLBACK_MS).catch(() => undefined);
      else await new Promise((r) => setTimeout(r, MONITOR_POLL_MS));
      release?.drain(); // this look covers every event so far
      const info = await infoOrGone(deps, domid);
      if (!info) {
        log.info({ dom: domid }, 'domain is gone (destroyed); nothing left to do');
        return;
      }
      if (info.shutdown === null) {
        // An HVM guest cannot run without its device model: if that process died, the guest crashes (on_crash).
        const dm = deps.runDir ? deviceModelDied(deps.runDir, domid) : null;
        if (dm) {
          log.warn({ dom: domid, dm: dm.name, pid: dm.pid }, `device model ${dm.name} (pid ${dm.pid}) died: crashing domain ${domid}`);
          await stopDeviceModel(deps.hv, deps.runDir!, domid, deps.xs);
          await deps.hv.call('domctl.shutdown', { domid, reason: 'crash' }).catch(() => undefined);
        }
        continue;
      }
      let action = actionFor(cfg, info.shutdown);
      if (action === 'restart' || action === 'rename-restart' || action === 'coredump-restart') {
        const now = Date.now();
        while (restarts.length && now - restarts[0]! > RESTART_WINDOW_MS) restarts.shift();
        if (restarts.length >= MAX_RESTARTS_IN_WINDOW) {
          log.error({ dom: domid, restarts: restarts.length }, `domain restarted ${restarts.length} times in ${RESTART_WINDOW_MS / 1000} s: leaving it as it is (preserve)`);
          action = 'preserve';
        } else {
          restarts.push(now);
        }
      }
      log.info({ dom: domid, reason: info.shutdown, code: SHUTDOWN_CODES[info.shutdown], action }, `Domain ${domid} has shut down, reason code ${SHUTDOWN_CODES[info.shutdown]}: action is ${action}`);
      // Read before the destroy removes it: the MACs this domain was given.
      const previous = deps.runDir ? loadUserdata(deps.runDir, domid) : null;
      const next = await applyAction(deps, domid, action, () => createGuest(deps, sameMacs(reload(), previous), { configDir }), log);
      if (next === null) return;
      domid = next;
      cfg = reload();
    }
  }
}

/** Carry out one action; returns the domid to keep watching, or null when done. */
async function applyAction(deps: CreateDeps, domid: DomId, action: ShutdownAction | 'suspend', recreate: () => Promise<DomId>, log: Logger): Promise<DomId | null> {
  switch (action) {
    case 'preserve':
    case 'suspend':
      log.info({ dom: domid }, 'leaving the domain as it is (preserve)');
      return null;
    case 'destroy':
    case 'coredump-destroy':
    case 'soft-reset':
      if (action !== 'destroy') log.warn({ dom: domid, action }, `${action} is not supported by xenbox: destroying the domain`);
      await destroyGuest(deps, domid);
      log.info({ dom: domid }, 'domain destroyed');
      return null;
    case 'restart':
    case 'rename-restart':
    case 'coredump-restart': {
      if (action !== 'restart') log.warn({ dom: domid, action }, `${action} is not supported by xenbox: doing restart`);
      await destroyGuest(deps, domid);
      const fresh = await recreate();
      log.info({ old: domid, dom: fresh }, `Done. Rebooted as domain ${fresh}`);
      return fresh;
    }
  }
}
