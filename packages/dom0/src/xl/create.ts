/**
 * `xl create [-p] [-c] [-e] [-F] [-n] FILE [KEY=VALUE ...]` (tools/xl/xl_vmcontrol.c).
 * Builds the guest, then leaves a monitor behind that applies on_poweroff /
 * on_reboot / on_crash when it shuts down (unless -e); -F keeps that monitor
 * in the foreground; -c attaches the console; -n only prints the parsed config.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_RUN_DIR, runDirLayout, type DomId } from '@xenbox/abi';
import { XenstoreClient, createLogger } from '@xenbox/libxen';
import { createGuest, destroyGuest, type CreateDeps } from '../libxl/domain-create.js';
import { domainConfigToJson, loadDomainConfig } from '../xlcfg/domain-config.js';
import { attachConsole } from './console-client.js';
import type { XlContext } from './context.js';
import { monitorGuest } from './monitor.js';
import { ENV_SUPERVISED } from '../supervisor/run-dir.js';

export interface CreateFlags {
  paused?: boolean;
  console?: boolean;
  noMonitor?: boolean;
  foreground?: boolean;
}

const XL_BIN = fileURLToPath(new URL('../../bin/xl.js', import.meta.url));

export async function guestDeps(ctx: XlContext): Promise<CreateDeps> {
  const xs = await XenstoreClient.connectRunDir(ctx.runDir, { timeoutMs: 5000 }).catch(() => null);
  return { hv: ctx.hv, xs, runDir: ctx.runDir, say: (l) => process.stderr.write(l + '\n') };
}

function parseForCreate(file: string, overrides: string[]) {
  process.stderr.write(`Parsing config from ${file}\n`);
  const cfg = loadDomainConfig(file, overrides);
  for (const n of cfg.notes) process.stderr.write(`xl: note: ${n}\n`);
  return cfg;
}

/** `xl create -n` / `xl -N create`: the parsed domain config as JSON; no stack needed. */
export function createDryRun(file: string, overrides: string[]): string {
  return domainConfigToJson(parseForCreate(file, overrides)) + '\n';
}

export async function xlCreate(ctx: XlContext, file: string, overrides: string[], flags: CreateFlags): Promise<DomId | null> {
  const cfg = parseForCreate(file, overrides);
  const deps = await guestDeps(ctx);
  try {
    const configDir = dirname(resolve(file));
    const domid = await createGuest(deps, cfg, { paused: flags.paused, configDir });
    process.stderr.write(`Domain ${domid} (${cfg.name}) created${flags.paused ? ', paused' : ''}\n`);
    if (flags.foreground) {
      const log = createLogger(ctx.runDir, `xl-${cfg.name}`);
      await monitorGuest(deps, domid, () => loadDomainConfig(file, overrides), log, configDir);
    } else if (!flags.noMonitor) {
      spawnMonitor(ctx.runDir, cfg.name, domid, file, overrides);
    }
    if (flags.console) await attachConsole(runDirLayout(ctx.runDir).consoleSocket, domid);
    return domid;
  } finally {
    deps.xs?.close();
  }
}

/** xl daemonizes a child per guest; so does xenbox (`xl __monitor`, hidden). */
export function spawnMonitor(runDir: string, name: string, domid: DomId, file: string, overrides: string[]): void {
  const out = openSync(runDirLayout(runDir).logFile(`xl-${name}`).replace(/\.log$/, '.out'), 'a', 0o600);
  const child = spawn(process.execPath, [XL_BIN, '__monitor', String(domid), file, ...overrides], {
    detached: true,
    stdio: ['ignore', out, out],
    // Marked like the supervisor's children, so `xenbox down` finds it.
    env: { ...process.env, [ENV_RUN_DIR]: runDir, [ENV_SUPERVISED]: resolve(runDir) },
  });
  child.unref();
}

/** The hidden `xl __monitor DOMID FILE [overrides]`: run the monitor in this process. */
export async function xlMonitor(ctx: XlContext, domid: DomId, file: string, overrides: string[]): Promise<void> {
  const cfg = loadDomainConfig(file, overrides);
  const log = createLogger(ctx.runDir, `xl-${cfg.name}`);
  const deps = await guestDeps(ctx);
  try {
    await monitorGuest(deps, domid, () => loadDomainConfig(file, overrides), log, dirname(resolve(file)));
  } finally {
    deps.xs?.close();
  }
}

/**
 * `xl destroy`: libxl_domain_destroy — the domain, its device model, its
 * devices' xenstore directories and its xenstore home, not only the
 * hypervisor's half.
 */
export async function xlDestroy(ctx: XlContext, domid: DomId): Promise<void> {
  const deps = await guestDeps(ctx);
  try {
    await destroyGuest(deps, domid);
  } finally {
    deps.xs?.close();
  }
}
