/**
 * The hypercall table (xen/arch/x86/hypercall.c's role): op name -> handler
 * and who may make the call.  The privilege check happens here, before any
 * handler runs, as Xen's XSM dummy policy does (xen/include/xsm/dummy.h):
 * domctl and sysctl are for the control domain only.
 */
import { XenError, type HypercallOp } from '@xenbox/abi';
import type { Domain } from './domain.js';

/**
 * XSM_HOOK: anyone; XSM_PRIV: the control domain (dom0); XSM_XS_PRIV: dom0
 * or the xenstore domain (created with flag xs_domain), for what xenstored
 * needs to know about domains (getdomaininfo, as in xsm/dummy.h).
 */
export type Privilege = 'hook' | 'priv' | 'xs_priv';

/** Who is calling besides the domain: the connection, so mirrors can be tied to it. */
export interface CallContext {
  peerKey: string;
}

export interface HypercallEntry {
  priv: Privilege;
  handle(caller: Domain, args: unknown, ctx: CallContext): unknown;
}

export type HypercallTable = Partial<Record<HypercallOp, HypercallEntry>>;

export function lookupHypercall(table: HypercallTable, op: string, caller: Domain): HypercallEntry {
  const entry = Object.prototype.hasOwnProperty.call(table, op) ? table[op as HypercallOp] : undefined;
  if (!entry) throw new XenError('ENOSYS', `no hypercall '${op}'`);
  if (entry.priv === 'xs_priv' && !caller.isPrivileged && !caller.flags.includes('xs_domain')) {
    throw new XenError('EPERM', `${op}: only the control domain or the xenstore domain may make this call (caller is d${caller.domid})`);
  }
  if (entry.priv === 'priv' && !caller.isPrivileged) {
    throw new XenError('EPERM', `${op}: only the control domain may make this call (caller is d${caller.domid})`);
  }
  return entry;
}
