#!/usr/bin/env node
/**
 * The block driver domain.  Process skeleton: it registers with the
 * hypervisor as its own domain, connects to xenstored and reports ready; vbds arrive with the
 * split-drivers issue.
 */
import { bootstrapDomain, runMain } from '@xenbox/libxen';

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'blkback' });
  // Prove our xenstore identity: the toolstack wrote our name under our domain path.
  const xs = await dom.xenstore();
  dom.log.info({ xenstoreName: await xs.read(`/local/domain/${dom.domid}/name`) }, 'connected to xenstored');
  dom.ready();
});
