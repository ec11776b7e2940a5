/** Start a lone hypervisor process in a temp run dir, for transport tests. */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { runDirLayout, type ProcessNotice } from '@xenbox/abi';
import { HYPERVISOR_MAIN, tempRunDir } from './paths.js';

export interface LoneHypervisor {
  runDir: string;
  child: ChildProcess;
  dom0Token: string;
  stop(): Promise<void>;
}

export async function startHypervisor(tag: string): Promise<LoneHypervisor> {
  const runDir = tempRunDir(tag);
  const child = fork(HYPERVISOR_MAIN, ['--run-dir', runDir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((res, rej) => {
    child.once('message', (m: ProcessNotice) => (m.type === 'ready' ? res() : rej(new Error(JSON.stringify(m)))));
    child.once('exit', (c) => rej(new Error(`hypervisor exited ${c}`)));
  });
  return {
    runDir,
    child,
    dom0Token: readFileSync(runDirLayout(runDir).dom0Token, 'utf8').trim(),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}
