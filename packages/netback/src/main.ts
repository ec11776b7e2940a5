#!/usr/bin/env node
/**
 * The network driver domain (docs/netback.md): registers as its own domain,
 * reads its bridges and captures from its stack-config arguments, serves
 * every vif the toolstack gives it.
 */
import { bootstrapDomain, runMain } from '@xenbox/libxen';
import { netbackConfigFromArgs } from './bridge-config.js';
import { Netback } from './netback.js';

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'netback' });
  const cfg = netbackConfigFromArgs(dom.args, dom.runDir);
  const xs = await dom.xenstore();
  // Prove our xenstore identity: the toolstack wrote our name under our domain path.
  dom.log.info({ xenstoreName: await xs.read(`/local/domain/${dom.domid}/name`) }, 'connected to xenstored');
  const netback = new Netback(dom.domid, dom.hv, xs, dom.log, cfg);
  dom.onShutdown(() => netback.stop());
  await netback.start();
  dom.log.info({ bridges: cfg.bridges, captures: Object.fromEntries(cfg.pcap) }, 'netback serving');
  dom.ready();
});
