import { mkdtempSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const XENBOX_BIN = resolve(REPO, 'packages/dom0/bin/xenbox.js');
export const XL_BIN = resolve(REPO, 'packages/dom0/bin/xl.js');

/** A fresh run dir under /tmp: short enough for ipc:// socket paths. */
export function tempRunDir(tag: string): string {
  return mkdtempSync(`/tmp/xb-${tag}-`);
}
