/**
 * The config each guest was created from, kept beside the stack as libxl
 * keeps "libxl-json" userdata (tools/libs/light/libxl_dom.c
 * libxl__userdata_store; /var/lib/xen/userdata-d.<domid>.<uuid>.libxl-json),
 * for `xl list -l` and restarts.  Written atomically (rename), removed on
 * destroy.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { runDirLayout, type DomId } from '@xenbox/abi';
import { domainConfigToJson, type DomainConfig } from '../xlcfg/domain-config.js';

export function storeUserdata(runDir: string, domid: DomId, cfg: DomainConfig): void {
  const path = runDirLayout(runDir).userdata(domid);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(`${path}.tmp`, domainConfigToJson(cfg) + '\n', { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/** The stored config, or null for a domain xl did not create (dom0, driver domains). */
export function loadUserdata(runDir: string, domid: DomId): DomainConfig | null {
  try {
    return JSON.parse(readFileSync(runDirLayout(runDir).userdata(domid), 'utf8')) as DomainConfig;
  } catch {
    return null;
  }
}

export function removeUserdata(runDir: string, domid: DomId): void {
  rmSync(runDirLayout(runDir).userdata(domid), { force: true });
}
