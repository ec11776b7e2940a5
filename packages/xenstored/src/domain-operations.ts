/**
 * Domain management messages (tools/xenstored/domain.c, docs/misc/
 * xenstore.txt): INTRODUCE, RELEASE, IS_DOMAIN_INTRODUCED, RESUME,
 * SET_TARGET, GET_DOMAIN_PATH, GET/SET_FEATURE and GET/SET_QUOTA.
 */
import { DOMID_DOM0, DOMID_FIRST_RESERVED, DOMID_SELF, XS_INTRODUCE_DOMAIN, XS_QUOTA_NAMES, XenError } from '@xenbox/abi';
import { SERVER_FEATURES } from './domains.js';
import { domainPath } from './path.js';
import { checkName } from './quota.js';
import { atLeast, domidArg, oneArg, OK, requirePrivileged, strings, type Reply, type Request } from './request.js';

function guestDomid(text: string): number {
  const domid = domidArg(text);
  if (domid === DOMID_DOM0 || domid >= DOMID_FIRST_RESERVED) throw new XenError('EINVAL', `${domid} is not a guest domain id`);
  return domid;
}

/** domain.c find_connected_domain(): ENOENT unless introduced. */
function introducedDomid(req: Request, text: string): number {
  const domid = domidArg(text);
  if (!req.xs.domains.isIntroduced(domid)) throw new XenError('ENOENT', `domain ${domid} is not introduced`);
  return domid;
}

/**
 * INTRODUCE <domid> <gfn> <evtchn> [<secret>]: start talking to a domain.
 * A guest is reached through its ring page (gfn) and event channel; a
 * process domain instead proves itself on the ZeroMQ socket with the secret
 * dom0 gives here (xenbox's fourth argument, ignored by Xen's libxenstore
 * which never sends it; docs/xenstored.md).
 */
export function doIntroduce(req: Request): Reply {
  const [domText, gfnText, portText, secret] = atLeast(req, 3) as [string, string, string, string | undefined];
  const domid = guestDomid(domText);
  if (!/^-?[0-9]+$/.test(gfnText)) throw new XenError('EINVAL', `gfn ${JSON.stringify(gfnText.slice(0, 32))} is not a number`);
  if (!/^[0-9]+$/.test(portText)) throw new XenError('EINVAL', `event channel ${JSON.stringify(portText.slice(0, 32))} is not a number`);
  // domain.c do_introduce(): "Sanity check args" -- a guest needs its event channel.
  if (Number(portText) <= 0 && !secret) throw new XenError('EINVAL', 'INTRODUCE needs an event channel port (or, for a process domain, a secret)');
  if (secret !== undefined && (secret.length < 16 || secret.length > 256)) throw new XenError('EINVAL', 'a domain secret must be 16 to 256 characters');
  const { xs } = req;
  const wasIntroduced = xs.domains.isIntroduced(domid);
  // domain.c domain_conn_reset(): (re-)introduction starts the domain's connections afresh.
  for (const c of xs.connectionsOf(domid)) {
    xs.watches.forget(c);
    c.transactions.clear();
  }
  // A guest (no secret, a port) is reached through its ring page: map it and bind the port (ring-listener.ts).
  const ring = secret === undefined && Number(portText) > 0 ? { gfn: Number(gfnText), port: Number(portText) } : undefined;
  xs.domains.update(domid, { introduced: true, secret: secret ?? xs.domains.get(domid)?.secret, shutdown: false, ...(ring ? { ring } : {}) });
  xs.domains.noteIntroduction(domid);
  if (ring) req.after.push(() => xs.rings?.introduce(domid, ring.gfn, ring.port));
  if (!wasIntroduced) req.after.push(() => xs.fireSpecial(XS_INTRODUCE_DOMAIN));
  return OK;
}

/** RELEASE <domid>: stop talking to a domain, remove the nodes it owns, fire @releaseDomain. */
export function doRelease(req: Request): Reply {
  const domid = domidArg(oneArg(req));
  if (domid === DOMID_DOM0) throw new XenError('EINVAL', 'dom0 cannot be released');
  introducedDomid(req, String(domid));
  // Before the reply, as domain.c does: the reply must not leave before the change is journaled.
  req.xs.releaseDomain(domid);
  return OK;
}

export function doIsDomainIntroduced(req: Request): Reply {
  const domid = domidArg(oneArg(req));
  return domid === DOMID_SELF || req.xs.domains.isIntroduced(domid) ? 'T' : 'F';
}

/** RESUME <domid>: @releaseDomain may fire again for this domain's next shutdown. */
export function doResume(req: Request): Reply {
  const domid = domidArg(oneArg(req));
  if (domid === DOMID_DOM0) throw new XenError('EINVAL', 'dom0 cannot be resumed');
  introducedDomid(req, String(domid));
  req.xs.domains.update(domid, { shutdown: false });
  return OK;
}

/** SET_TARGET <domid> <tdomid>: a stub domain acts with its target's rights. */
export function doSetTarget(req: Request): Reply {
  const [a, b] = atLeast(req, 2);
  const domid = introducedDomid(req, a!);
  const target = introducedDomid(req, b!);
  req.xs.domains.update(domid, { target });
  return OK;
}

export function doGetDomainPath(req: Request): Reply {
  return domainPath(domidArg(oneArg(req)));
}

/** GET_FEATURE [<domid>]: the feature bits of the caller's domain, or (privileged) of any domain. */
export function doGetFeature(req: Request): Reply {
  const args = strings(req);
  if (args.length > 1) throw new XenError('EINVAL', 'GET_FEATURE takes at most a domid');
  if (args.length === 0) return String(req.xs.domains.get(req.conn.domid!)?.features ?? SERVER_FEATURES);
  requirePrivileged(req, 'GET_FEATURE of another domain');
  const d = req.xs.domains.get(domidArg(args[0]!));
  if (!d) throw new XenError('ENOENT', `domain ${args[0]} is not known`);
  return String(d.features);
}

/** SET_FEATURE <domid> <bits>: only before the domain is introduced, and only bits xenstored has. */
export function doSetFeature(req: Request): Reply {
  requirePrivileged(req, 'SET_FEATURE');
  const [domText, valueText] = atLeast(req, 2);
  const domid = guestDomid(domText!);
  if (!/^[0-9]{1,10}$/.test(valueText!)) throw new XenError('EINVAL', `feature bits ${JSON.stringify(valueText)} are not a number`);
  if (req.xs.domains.isIntroduced(domid)) throw new XenError('EBUSY', `domain ${domid} is introduced already`);
  req.xs.domains.update(domid, { features: Number(valueText) & SERVER_FEATURES });
  return OK;
}

/**
 * GET_QUOTA: no argument lists the quota names; <quota> gives the global
 * value; <domid> <quota> the value binding that domain.
 */
export function doGetQuota(req: Request): Reply {
  requirePrivileged(req, 'GET_QUOTA');
  const args = strings(req);
  const q = req.xs.quotas;
  if (args.length === 0) return XS_QUOTA_NAMES.join(' ');
  if (args.length === 1) return String(q.hard[checkName(args[0]!)]);
  if (args.length === 2) return String(q.limit(domidArg(args[0]!), checkName(args[1]!)));
  throw new XenError('EINVAL', 'GET_QUOTA takes [[<domid>] <quota>]');
}

/** SET_QUOTA [<domid>] <quota> <value>; 0 disables the quota. */
export function doSetQuota(req: Request): Reply {
  requirePrivileged(req, 'SET_QUOTA');
  const args = strings(req);
  const value = (t: string) => {
    if (!/^[0-9]{1,10}$/.test(t)) throw new XenError('EINVAL', `quota value ${JSON.stringify(t)} is not a number`);
    return Number(t);
  };
  if (args.length === 2) req.xs.setGlobalQuota(args[0]!, value(args[1]!));
  else if (args.length === 3) req.xs.setDomainQuota(domidArg(args[0]!), args[1]!, value(args[2]!));
  else throw new XenError('EINVAL', 'SET_QUOTA takes [<domid>] <quota> <value>');
  return OK;
}
