/**
 * `evtchn.reoffer` (@xenbox/abi evtchn-reoffer.ts): dom0 offers a domain's
 * unbound port to another remote domain, for a xenstored restarted as a new
 * domain (what Xen's live update makes unnecessary by keeping the domain).
 * Only the remote end an unbound channel accepts changes; nothing is
 * signalled.
 */
import { XenError, argDomId, argDomIdOrSelf, argInt, argObject } from '@xenbox/abi';
import type { Hypervisor } from '../hypervisor.js';
import type { HypercallTable } from './hypercall-table.js';
import { targetDomain } from './xsm.js';

export function evtchnReofferOps(hv: Hypervisor): HypercallTable {
  return {
    'evtchn.reoffer': {
      priv: 'priv',
      handle(caller, raw) {
        const op = 'evtchn.reoffer';
        const a = argObject(op, raw);
        const d = targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, a, 'dom'));
        const port = argInt(op, a, 'port', 0, 0xffff_ffff);
        const remote = argDomId(op, a, 'remote_dom');
        const ch = d.evtchn.require(port, op);
        if (ch.state !== 'unbound') throw new XenError('EINVAL', `${op}: d${d.domid} port ${port} is ${ch.state}, not unbound`);
        ch.remoteDom = remote;
        return null;
      },
    },
  };
}
