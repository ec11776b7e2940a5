#!/usr/bin/env node
/**
 * The network driver domain.  Process skeleton: it registers with the
 * hypervisor as its own domain, connects to xenstored, validates its bridge list and reports ready;
 * vifs and bridging arrive with the split-drivers issue.
 */
import { bootstrapDomain, runMain } from '@xenbox/libxen';
import { bridgesFromArgs } from './bridge-config.js';

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'netback' });
  const bridges = bridgesFromArgs(dom.args);
  dom.log.info({ bridges }, 'bridges configured');
  // Prove our xenstore identity: the toolstack wrote our name under our domain path.
  const xs = await dom.xenstore();
  dom.log.info({ xenstoreName: await xs.read(`/local/domain/${dom.domid}/name`) }, 'connected to xenstored');
  dom.ready();
});
