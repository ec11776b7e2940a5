/**
 * Node paths: validation and canonical form, as canonicalize() and
 * valid_chars() in tools/xenstored/core.c.
 *
 * A path is absolute ("/local/domain/1/name"), special ("@releaseDomain")
 * or relative to the caller's home "/local/domain/<domid>".
 */
import { XENSTORE_ABS_PATH_MAX, XenError } from '@xenbox/abi';

/** core.c valid_chars(): "Nodes can have lots of crap", but only these. */
const VALID_PATH = /^[A-Za-z0-9\-/_@]*$/;

export const ROOT = '/';

/** tools/xenstored/domain.c talloc_domain_path(). */
export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

export function isSpecialPath(path: string): boolean {
  return path.startsWith('@');
}

export function isRelativePath(path: string): boolean {
  return !path.startsWith('/') && !path.startsWith('@');
}

/**
 * The canonical (absolute) form of `path` as seen by a connection whose home
 * is `home`; EINVAL when it is not a valid node name.  `pathMax` is the
 * caller's path-max quota (0: unlimited), counted, as in C xenstored, from
 * after "/local/domain/<n>/".
 */
export function canonicalize(path: string | undefined, home: string, allowSpecial: boolean, pathMax = 0): string {
  if (path === undefined || path.length === 0) throw new XenError('EINVAL', 'empty path');
  if (!VALID_PATH.test(path)) throw new XenError('EINVAL', `invalid character in path ${JSON.stringify(path.slice(0, 64))}`);
  if (isSpecialPath(path) && !allowSpecial) throw new XenError('EINVAL', `special path ${path} not allowed here`);
  const name = isRelativePath(path) ? `${home}/${path}` : path;
  if (name.length > 1 && name.endsWith('/')) throw new XenError('EINVAL', 'path ends in /');
  if (name.includes('//')) throw new XenError('EINVAL', 'path contains //');
  if (name.length > XENSTORE_ABS_PATH_MAX) throw new XenError('EINVAL', `path longer than ${XENSTORE_ABS_PATH_MAX}`);
  if (pathMax > 0 && name.length - localPrefixLength(name) > pathMax) throw new XenError('EINVAL', `path longer than path-max ${pathMax}`);
  return name;
}

/** Length of a leading "/local/domain/<n>/" (sscanf("/local/domain/%5u/%n") in core.c), else 0. */
function localPrefixLength(name: string): number {
  const m = /^\/local\/domain\/\d{1,5}\//.exec(name);
  return m ? m[0].length : 0;
}

/** core.c get_parent(): "/a/b" -> "/a", "/a" -> "/". */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? ROOT : path.slice(0, slash);
}

/** The last component; must not be called on "/". */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function childPath(parent: string, name: string): string {
  return parent === ROOT ? `/${name}` : `${parent}/${name}`;
}

/** tools/xenstored/watch.c is_child(): `child` equals `parent` or lies below it; everything is below "/". */
export function isAtOrBelow(child: string, parent: string): boolean {
  if (parent === ROOT) return true;
  if (!child.startsWith(parent)) return false;
  return child.length === parent.length || child.charCodeAt(parent.length) === 0x2f;
}

/** How many levels `child` lies below `parent` (0 = the same node). */
export function depthBelow(child: string, parent: string): number {
  if (child === parent) return 0;
  const rest = parent === ROOT ? child.slice(1) : child.slice(parent.length + 1);
  let n = 1;
  for (let i = 0; i < rest.length; i++) if (rest.charCodeAt(i) === 0x2f) n++;
  return n;
}
