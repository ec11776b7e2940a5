/**
 * HVM parameters (xen/arch/x86/hvm/hvm.c hvmop_get_param / hvmop_set_param;
 * Arm's do_hvm_op in xen/arch/arm/hvm.c keeps the same table): a per-domain
 * array of u64 values the toolstack sets while building a guest
 * (xc_hvm_param_set: the xenstore and console rings and their ports) and the
 * guest reads to find them (HVMOP_get_param).  A param never set reads 0.
 *
 * Privilege, as Xen's XSM dummy policy: get is XSM_TARGET (the domain
 * itself, dom0, or a stub domain over its guest); set is the toolstack's
 * (dom0), so a guest's HVMOP_set_param is EPERM.
 */
import { HVM_NR_PARAMS, XenError, argDomIdOrSelf, argInt, argObject, type Fields } from '@xenbox/abi';
import type { Hypervisor } from '../hypervisor.js';
import type { Domain } from './domain.js';
import type { HypercallTable } from './hypercall-table.js';
import { targetDomain } from './xsm.js';

/** d->arch.hvm.params: kept beside the domain, gone with it. */
const params = new WeakMap<Domain, Map<number, number>>();

/** Largest value a param may hold here: numbers travel as doubles (gfns and ports fit easily). */
const PARAM_VALUE_MAX = Number.MAX_SAFE_INTEGER;

function paramIndex(op: string, a: Fields): number {
  const index = argInt(op, a, 'index', 0, 0xffff_ffff);
  if (index >= HVM_NR_PARAMS) throw new XenError('EINVAL', `${op}: param ${index} is not below HVM_NR_PARAMS (${HVM_NR_PARAMS})`);
  return index;
}

export function getParam(d: Domain, index: number): number {
  return params.get(d)?.get(index) ?? 0;
}

export function setParam(d: Domain, index: number, value: number): void {
  let m = params.get(d);
  if (!m) params.set(d, (m = new Map()));
  m.set(index, value);
}

export function hvmParamOps(hv: Hypervisor): HypercallTable {
  return {
    'hvm.get_param': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'hvm.get_param';
        const a = argObject(op, raw);
        const d = targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, a, 'domid'));
        return { value: getParam(d, paramIndex(op, a)) };
      },
    },
    'hvm.set_param': {
      priv: 'priv',
      handle(caller, raw) {
        const op = 'hvm.set_param';
        const a = argObject(op, raw);
        const d = targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, a, 'domid'));
        setParam(d, paramIndex(op, a), argInt(op, a, 'value', 0, PARAM_VALUE_MAX));
        return null;
      },
    },
  };
}
