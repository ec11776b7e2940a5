#!/usr/bin/env node
/**
 * xenconsoled: dom0's console daemon (tools/console/daemon).  Runs with
 * dom0's privilege, as in Xen.  Process skeleton for now: it registers with
 * the hypervisor as dom0 and reports ready; console rings and `xl console`
 * arrive with the toolstack issue.
 */
import { bootstrapDomain, runMain } from '@xenbox/libxen';

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'xenconsoled' });
  dom.ready();
});
