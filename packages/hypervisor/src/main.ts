#!/usr/bin/env node
/**
 * The hypervisor process.  Started first by `xenbox up`; everything else is a
 * domain that connects to it.
 */
import { Command } from 'commander';
import { createLogger, installShutdown, notifySupervisor, runMain, checkIpcPath } from '@xenbox/libxen';
import { runDirLayout } from '@xenbox/abi';
import { Hypervisor } from './hypervisor.js';

async function main(): Promise<void> {
  const program = new Command('hypervisor')
    .description('xenbox hypervisor: domains, grants, event channels, vCPUs')
    .requiredOption('--run-dir <dir>', 'run directory of this stack')
    .option('--tcp <endpoint...>', 'also serve on these tcp:// endpoints')
    .parse();
  const opts = program.opts<{ runDir: string; tcp?: string[] }>();
  checkIpcPath(runDirLayout(opts.runDir).hypervisorSocket);
  const log = createLogger(opts.runDir, 'hypervisor');
  const hv = new Hypervisor({ runDir: opts.runDir, log, extraEndpoints: opts.tcp });
  installShutdown(log, () => hv.stop());
  await hv.start();
  log.info('ready');
  notifySupervisor({ type: 'ready', domid: null });
}

runMain(main);
