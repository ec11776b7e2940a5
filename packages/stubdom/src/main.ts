#!/usr/bin/env node
/**
 * A stub domain: the device model of one HVM guest.  Entry point: it
 * registers with the hypervisor as its own domain (privileged over its target
 * only); the device model arrives with the HVM issue.
 */
import { bootstrapDomain, runMain } from '@xenbox/libxen';

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'stubdom' });
  dom.log.info({ target: dom.args.target ?? null }, 'device model for target');
  dom.ready();
});
