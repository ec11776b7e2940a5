/** Start a lone hypervisor process in a temp run dir, for transport tests. */
import { rmSync } from 'node:fs';
import { launchHypervisor, type LaunchedHypervisor } from '@xenbox/hypervisor';
import { tempRunDir } from './paths.js';

export type LoneHypervisor = LaunchedHypervisor;

export async function startHypervisor(tag: string): Promise<LoneHypervisor> {
  const runDir = tempRunDir(tag);
  const hv = await launchHypervisor(runDir);
  return {
    ...hv,
    async stop() {
      await hv.stop();
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}
