#!/usr/bin/env node
/**
 * xenstored as a service domain of the stack (like Xen's xenstore stub
 * domain): started by the supervisor with XENBOX_RUN_DIR/XENBOX_DOMID/
 * XENBOX_TOKEN, it restores the store from $RUN_DIR/xenstored/, listens on
 * the Unix socket and the ZeroMQ socket, then reports ready.
 */
import { bootstrapDomain, runMain } from '@xenbox/libxen';
import { XenstoredServer } from './server.js';

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'xenstored' });
  const server = await XenstoredServer.start({ runDir: dom.runDir, log: dom.log, hv: dom.hv });
  dom.onShutdown(() => server.close());
  dom.log.info({ socket: server.socketPath }, 'xenstored serving');
  dom.ready();
});
