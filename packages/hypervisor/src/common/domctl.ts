/**
 * domctl and sysctl domain-list operations (xen/common/domctl.c, sysctl.c).
 */
import {
  DOMAIN_KINDS,
  DOMID_DOM0,
  XenError,
  argDomId,
  argEnum,
  argObject,
  argString,
  isValidDomId,
  type CreateDomainReply,
} from '@xenbox/abi';
import type { Hypervisor } from '../hypervisor.js';
import type { HypercallTable } from './hypercall-table.js';

/** Domain names follow libxl's rules: printable, no '/' (they become xenstore path parts). */
const DOMAIN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$/;

export function domctlOps(hv: Hypervisor): HypercallTable {
  return {
    'domctl.createdomain': {
      priv: 'priv',
      handle(_caller, raw): CreateDomainReply {
        const op = 'domctl.createdomain';
        const a = argObject(op, raw);
        const name = argString(op, a, 'name', 64);
        if (!DOMAIN_NAME_RE.test(name)) throw new XenError('EINVAL', `${op}: '${name}' is not a valid domain name (letters, digits, _ . : + -; at most 64)`);
        const kind = argEnum(op, a, 'kind', DOMAIN_KINDS);
        if (kind === 'dom0') throw new XenError('EINVAL', `${op}: there is only one control domain`);
        let target: number | null = null;
        if (kind === 'stubdom') {
          if (!isValidDomId(a.target)) throw new XenError('EINVAL', `${op}: a stub domain needs target, the domid of its guest`);
          hv.domains.require(a.target);
          target = a.target;
        }
        const { domain, token } = hv.createDomain(name, kind, target);
        return { domid: domain.domid, uuid: domain.uuid, token };
      },
    },
    'domctl.destroydomain': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.destroydomain';
        const domid = argDomId(op, argObject(op, raw));
        if (domid === DOMID_DOM0) throw new XenError('EINVAL', `${op}: the control domain cannot be destroyed`);
        hv.destroyDomain(domid, 'destroyed by the toolstack');
        return null;
      },
    },
    'domctl.getdomaininfo': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.getdomaininfo';
        return hv.domains.require(argDomId(op, argObject(op, raw))).info();
      },
    },
    'sysctl.getdomaininfolist': {
      priv: 'priv',
      handle: () => hv.domains.all().map((d) => d.info()),
    },
  };
}
