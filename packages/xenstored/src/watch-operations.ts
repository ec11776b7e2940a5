/**
 * WATCH, UNWATCH and RESET_WATCHES (tools/xenstored/watch.c, domain.c).
 */
import { XenError } from '@xenbox/abi';
import { isRelativePath } from './path.js';
import { pathArg } from './operations.js';
import { exactly, OK, strings, type Reply, type Request } from './request.js';

export function doWatch(req: Request): Reply {
  const args = strings(req);
  // path, token [, depth] (the depth form needs XENSTORE_SERVER_FEATURE_WATCHDEPTH).
  if (args.length !== 2 && args.length !== 3) throw new XenError('EINVAL', `WATCH takes a path and a token (and optionally a depth), got ${args.length} strings`);
  const [rawPath, token, depthText] = args as [string, string, string | undefined];
  if (depthText !== undefined && !/^[0-9]{1,9}$/.test(depthText)) throw new XenError('EINVAL', `watch depth ${JSON.stringify(depthText)} is not a number`);
  const path = pathArg(req, rawPath, true);
  const { conn, xs } = req;
  if (conn.watches.some((w) => w.path === path && w.token === token)) throw new XenError('EEXIST', `watch on ${path} with this token exists`);
  // watch.c do_watch(): too many watches is E2BIG, not ENOSPC.
  if (!conn.privileged && xs.quotas.exceeds(conn.domid!, 'watches', xs.watchesOf(conn.domid!) + 1)) {
    throw new XenError('E2BIG', `domain ${conn.domid} has ${xs.quotas.limit(conn.domid!, 'watches')} watches already`);
  }
  const watch = { path, token, prefixLength: isRelativePath(rawPath) ? conn.home.length + 1 : 0, depth: depthText === undefined ? undefined : Number(depthText) };
  xs.watches.add(conn, watch);
  // "We fire once up front: simplifies clients and restart."
  req.after.push(() => conn.sendEvent(path.slice(watch.prefixLength), token));
  return OK;
}

export function doUnwatch(req: Request): Reply {
  const [rawPath, token] = exactly(req, 2);
  const path = pathArg(req, rawPath, true);
  if (!req.xs.watches.remove(req.conn, path, token!)) throw new XenError('ENOENT', `no watch on ${path} with this token`);
  return OK;
}

/** domain.c do_reset_watches(): all watches AND transactions of the caller go. */
export function doResetWatches(req: Request): Reply {
  req.xs.watches.forget(req.conn);
  req.conn.transactions.clear();
  return OK;
}
