#!/usr/bin/env node
/**
 * xenstored as a service domain (like Xen's xenstore stub domain).
 * This is the process skeleton: it registers with the hypervisor and
 * reports ready; the store itself arrives with the xenstored issue.
 */
import { bootstrapDomain, runMain } from '@xenbox/libxen';

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'xenstored' });
  dom.ready();
});
