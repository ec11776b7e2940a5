#!/usr/bin/env node
/**
 * xenstored without the rest of the stack: `node standalone.js --run-dir DIR`.
 * For tests, benchmarks and trying Xen's clients against it; the stack
 * itself runs main.js.  Prints "ready <socket>" on stdout once serving.
 */
import { Command } from 'commander';
import { createLogger, runMain } from '@xenbox/libxen';
import { XenstoredServer } from './server.js';

runMain(async () => {
  const opts = new Command('xenstored')
    .requiredOption('--run-dir <dir>', 'run directory ($RUN_DIR); the socket is <dir>/xenstored/socket')
    .option('--no-persist', 'keep the store in memory only')
    .option('--no-zmq', 'do not serve ZeroMQ')
    .parse()
    .opts<{ runDir: string; persist: boolean; zmq: boolean }>();
  const log = createLogger(opts.runDir, 'xenstored');
  const server = await XenstoredServer.start({ runDir: opts.runDir, log, persistent: opts.persist, zmq: opts.zmq });
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`ready ${server.socketPath}\n`);
});
