/**
 * Start a hypervisor process on its own, outside a supervised stack: for
 * tests and benchmarks that need a real hypervisor and nothing else.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runDirLayout, type ProcessNotice } from '@xenbox/abi';
import { MALLOC_TUNING_ENV } from '@xenbox/libxen';

export interface LaunchedHypervisor {
  runDir: string;
  child: ChildProcess;
  /** dom0's credential, as minted at boot. */
  dom0Token: string;
  stop(): Promise<void>;
}

/** Node options for the hypervisor process come from XENBOX_HYPERVISOR_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"), for profiling. */
export const HYPERVISOR_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export async function launchHypervisor(runDir: string, extraArgs: string[] = [], nodeArgs: string[] = (process.env.XENBOX_HYPERVISOR_NODE_ARGS ?? '').split(' ').filter(Boolean)): Promise<LaunchedHypervisor> {
  const child = fork(HYPERVISOR_MAIN, ['--run-dir', runDir, ...extraArgs], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...MALLOC_TUNING_ENV }, execArgv: nodeArgs });
  await new Promise<void>((res, rej) => {
    child.once('message', (m: ProcessNotice) => (m.type === 'ready' ? res() : rej(new Error(`hypervisor failed: ${JSON.stringify(m)}`))));
    child.once('exit', (code, sig) => rej(new Error(`hypervisor exited (${sig ?? code}) before it was ready`)));
  });
  return {
    runDir,
    child,
    dom0Token: readFileSync(runDirLayout(runDir).dom0Token, 'utf8').trim(),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}
