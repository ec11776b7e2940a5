/**
 * Privilege checks of the XSM dummy policy (xen/include/xsm/dummy.h):
 *
 * - XSM_HOOK: anyone;
 * - XSM_TARGET: the domain itself, the control domain, or a device-model
 *   stub domain over its target (is_priv_for / xsm_default_action);
 * - XSM_PRIV: the control domain.
 *
 * A failed check changes nothing and answers EPERM, as Xen's -EPERM.
 */
import { DOMID_SELF, XenError, type DomId } from '@xenbox/abi';
import type { Domain, DomainTable } from './domain.js';

/** DOMID_SELF means the caller. */
export function resolveDomId(caller: Domain, dom: DomId): DomId {
  return dom === DOMID_SELF ? caller.domid : dom;
}

/** XSM_TARGET for caller over target. */
export function mayTarget(caller: Domain, target: Domain): boolean {
  return caller === target || caller.isPrivileged || (caller.kind === 'stubdom' && caller.target === target.domid);
}

/** rcu_lock_domain_by_any_id() + XSM_TARGET: the live domain, ESRCH if none, EPERM if not allowed. */
export function targetDomain(op: string, caller: Domain, domains: DomainTable, dom: DomId): Domain {
  const target = domains.get(resolveDomId(caller, dom));
  if (!target || target.dying) throw new XenError('ESRCH', `${op}: no domain ${dom}`);
  if (!mayTarget(caller, target)) throw new XenError('EPERM', `${op}: d${caller.domid} has no privilege over d${target.domid}`);
  return target;
}
