/**
 * Where a stack's run dir is when none is given: $XENBOX_RUN_DIR, else
 * ./run under the repository (DESIGN §12).
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_RUN_DIR } from '@xenbox/abi';

/** The repository root: this file is packages/dom0/dist/run-dir-default.js. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function defaultRunDir(): string {
  return resolve(process.env[ENV_RUN_DIR] || resolve(REPO_ROOT, 'run'));
}
