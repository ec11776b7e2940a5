#!/usr/bin/env node
/**
 * The hypervisor process.  Started first by `xenbox up`; everything else is a
 * domain that connects to it.
 */
import { Command, InvalidArgumentError } from 'commander';
import { createLogger, installShutdown, notifySupervisor, runMain, checkIpcPath } from '@xenbox/libxen';
import { runDirLayout } from '@xenbox/abi';
import { Hypervisor } from './hypervisor.js';
import { defaultHostMemBytes, parseMemSize } from './common/host-memory.js';

async function main(): Promise<void> {
  const program = new Command('hypervisor')
    .description('xenbox hypervisor: domains, grants, event channels, vCPUs')
    .requiredOption('--run-dir <dir>', 'run directory of this stack')
    .option('--tcp <endpoint...>', 'also serve on these tcp:// endpoints')
    .option('--pcpus <n>', 'pCPU worker threads for guest vCPUs (default: the host\'s parallelism)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError('--pcpus takes an integer from 1 to 256');
      return n;
    })
    .option('--host-mem <size>', 'memory all domains together may use (e.g. 4G, 512M; default half the machine)')
    .parse();
  const opts = program.opts<{ runDir: string; tcp?: string[]; hostMem?: string; pcpus?: number }>();
  const hostMemBytes = opts.hostMem === undefined ? defaultHostMemBytes() : parseMemSize(opts.hostMem);
  checkIpcPath(runDirLayout(opts.runDir).hypervisorSocket);
  const log = createLogger(opts.runDir, 'hypervisor');
  const hv = new Hypervisor({ runDir: opts.runDir, log, extraEndpoints: opts.tcp, hostMemBytes, pcpus: opts.pcpus });
  installShutdown(log, () => hv.stop());
  await hv.start();
  log.info('ready');
  notifySupervisor({ type: 'ready', domid: null });
}

runMain(main);
