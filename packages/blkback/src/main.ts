#!/usr/bin/env node
/**
 * The block driver domain.  Process skeleton: it registers with the
 * hypervisor as its own domain and reports ready; vbds arrive with the
 * split-drivers issue.
 */
import { bootstrapDomain, runMain } from '@xenbox/libxen';

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'blkback' });
  dom.ready();
});
