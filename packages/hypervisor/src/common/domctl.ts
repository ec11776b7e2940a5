/**
 * domctl operations (xen/common/domctl.c) and the scheduler's shutdown ops
 * (xen/common/sched/core.c SCHEDOP_shutdown / SCHEDOP_remote_shutdown).
 */
import {
  DOMAIN_CREATE_FLAGS,
  DOMAIN_KINDS,
  DOMID_DOM0,
  MAX_VCPUS_LIMIT,
  SHUTDOWN_REASONS,
  XenError,
  argDomId,
  argEnum,
  argInt,
  argObject,
  argOptInt,
  argOptString,
  argString,
  isValidDomId,
  type CreateDomainReply,
  type DomainCreateFlag,
  type Fields,
} from '@xenbox/abi';
import type { Hypervisor } from '../hypervisor.js';
import type { DomainConfig } from './domain.js';
import type { HypercallTable } from './hypercall-table.js';
import { kbToPages } from './memory.js';

/** Domain names follow libxl's rules: printable, no '/' (they become xenstore path parts). */
const DOMAIN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_MEM_KB = 0x7fff_ffff;

function createFlags(op: string, a: Fields): DomainCreateFlag[] | undefined {
  if (a.flags === undefined) return undefined;
  if (!Array.isArray(a.flags) || a.flags.some((f) => !(DOMAIN_CREATE_FLAGS as readonly unknown[]).includes(f))) {
    throw new XenError('EINVAL', `${op}: flags must be a list of ${DOMAIN_CREATE_FLAGS.join(', ')}`);
  }
  return a.flags as DomainCreateFlag[];
}

function domainConfig(op: string, a: Fields): DomainConfig & { memKb?: number } {
  const uuid = argOptString(op, a, 'uuid', 36);
  if (uuid !== undefined && !UUID_RE.test(uuid)) throw new XenError('EINVAL', `${op}: '${uuid}' is not a lower-case UUID`);
  return {
    uuid,
    flags: createFlags(op, a),
    maxMemKb: argOptInt(op, a, 'max_memkb', 4, MAX_MEM_KB),
    memKb: argOptInt(op, a, 'memkb', 0, MAX_MEM_KB),
    maxVcpus: argOptInt(op, a, 'max_vcpus', 1, MAX_VCPUS_LIMIT),
    maxGrantFrames: argOptInt(op, a, 'max_grant_frames', 1, 4096),
    maxMaptrackFrames: argOptInt(op, a, 'max_maptrack_frames', 0, 1 << 16),
    maxEvtchnPort: argOptInt(op, a, 'max_evtchn_port', 1, 4095),
  };
}

export function domctlOps(hv: Hypervisor): HypercallTable {
  const domOf = (op: string, raw: unknown) => hv.domains.require(argDomId(op, argObject(op, raw)));
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
        const config = domainConfig(op, a);
        const { domain, token } = hv.createDomain(name, kind, target, config);
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
      priv: 'xs_priv',
      handle: (_caller, raw) => domOf('domctl.getdomaininfo', raw).info(),
    },
    'domctl.pausedomain': {
      priv: 'priv',
      handle(_caller, raw) {
        const d = domOf('domctl.pausedomain', raw);
        if (d.domid === DOMID_DOM0) throw new XenError('EINVAL', 'domctl.pausedomain: the control domain cannot pause itself');
        hv.setPaused(d, true);
        return null;
      },
    },
    'domctl.unpausedomain': {
      priv: 'priv',
      handle(_caller, raw) {
        hv.setPaused(domOf('domctl.unpausedomain', raw), false);
        return null;
      },
    },
    'domctl.shutdown': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.shutdown';
        const a = argObject(op, raw);
        hv.shutdownDomain(hv.domains.require(argDomId(op, a)), argEnum(op, a, 'reason', SHUTDOWN_REASONS));
        return null;
      },
    },
    'domctl.rename': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.rename';
        const a = argObject(op, raw);
        const d = hv.domains.require(argDomId(op, a));
        const name = argString(op, a, 'name', 64);
        if (!DOMAIN_NAME_RE.test(name)) throw new XenError('EINVAL', `${op}: '${name}' is not a valid domain name (letters, digits, _ . : + -; at most 64)`);
        if (d.domid === 0) throw new XenError('EPERM', `${op}: Domain-0 keeps its name`);
        hv.domains.rename(d, name);
        return null;
      },
    },
    'domctl.max_mem': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.max_mem';
        const a = argObject(op, raw);
        const d = hv.domains.require(argDomId(op, a));
        // Xen lets max_mem drop below tot_pages (the balloon then has to give back); so do we.
        d.memory.maxPages = kbToPages(argInt(op, a, 'max_memkb', 0, MAX_MEM_KB));
        return null;
      },
    },
    'domctl.max_vcpus': {
      priv: 'priv',
      handle(_caller, raw) {
        const op = 'domctl.max_vcpus';
        const a = argObject(op, raw);
        const d = hv.domains.require(argDomId(op, a));
        const max = argInt(op, a, 'max', 1, MAX_VCPUS_LIMIT);
        // XEN_DOMCTL_max_vcpus may only be issued once, before the vCPUs exist; xenbox allows growing.
        if (max < d.maxVcpus) throw new XenError('EINVAL', `${op}: cannot shrink d${d.domid} from ${d.maxVcpus} vCPUs`);
        d.maxVcpus = max;
        d.evtchn.ensureVcpus(max);
        if (!d.isProcess) d.vcpusOnline = max;
        return null;
      },
    },
    'sched.shutdown': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'sched.shutdown';
        hv.shutdownDomain(caller, argEnum(op, argObject(op, raw), 'reason', SHUTDOWN_REASONS));
        return null;
      },
    },
    'sched.set_timer_op': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'sched.set_timer_op';
        hv.setTimer(caller, argInt(op, argObject(op, raw), 'timeout_ns', 0, Number.MAX_SAFE_INTEGER));
        return null;
      },
    },
  };
}
