/**
 * The node operations (tools/xenstored/core.c): READ, WRITE, MKDIR, RM,
 * DIRECTORY, DIRECTORY_PART, GET_PERMS, SET_PERMS.  Each works on the
 * request's view (live store or transaction), so transactions need no code
 * of their own here.
 */
import { XENSTORE_PAYLOAD_MAX, XS_NODE_HDR_SIZE, XS_PERMISSION_SIZE, XS_PERM_OWNER, XS_PERM_READ, XS_PERM_WRITE, XenError, type XenErrno } from '@xenbox/abi';
import { childList, type Node } from './node.js';
import { baseName, canonicalize, parentOf, ROOT } from './path.js';
import { formatPerms, inheritPerms, ownerOf, parsePerms, permFor, type Perms } from './permissions.js';
import { atLeast, exactly, OK, oneArg, type Reply, type Request } from './request.js';

/** Canonical path for this requester (path-max binds unprivileged domains). */
export function pathArg(req: Request, path: string | undefined, allowSpecial: boolean): string {
  const pathMax = req.conn.privileged ? 0 : req.xs.quotas.limit(req.conn.domid!, 'path-max');
  return canonicalize(path, req.conn.home, allowSpecial, pathMax);
}

/**
 * core.c errno_from_parents(): a missing node is ENOENT only to whom the
 * nearest existing ancestor grants `perm`; everyone else gets EACCES and
 * learns nothing about the tree.
 */
function errnoFromParents(req: Request, path: string, errno: XenErrno, perm: number): XenError {
  let p = path;
  let ancestor: Node | undefined;
  do {
    p = parentOf(p);
    ancestor = req.view.get(p);
  } while (!ancestor && p !== ROOT);
  if (ancestor && permFor(req.conn, ancestor.perms) & perm) return new XenError(errno, errno === 'ENOENT' ? `${path} does not exist` : `no access to ${path}`);
  return new XenError('EACCES', `no access to ${path}`);
}

/** core.c get_node() + get_node_chk_perm(): the node, if it exists and `perm` is granted. */
function nodeWithPerm(req: Request, path: string, perm: number): Node {
  const node = req.view.get(path);
  if (!node) throw errnoFromParents(req, path, 'ENOENT', perm);
  if ((permFor(req.conn, node.perms) & perm) !== perm) throw new XenError('EACCES', `no access to ${path}`);
  return node;
}

/** Does `path` exist?  ENOENT (permitted to know it does not) returns undefined; EACCES throws. */
function existingOrMissing(req: Request, path: string, perm: number): Node | undefined {
  try {
    return nodeWithPerm(req, path, perm);
  } catch (e) {
    if (e instanceof XenError && e.errno === 'ENOENT') return undefined;
    throw e;
  }
}

/** core.c calc_node_acc_size(): what the node-size quota counts. */
function nodeSize(perms: Perms, valueLength: number, childListLength: number): number {
  return XS_NODE_HDR_SIZE + perms.length * XS_PERMISSION_SIZE + valueLength + childListLength;
}

function checkNodeSize(req: Request, path: string, perms: Perms, valueLength: number, childListLength: number): void {
  if (req.conn.privileged) return;
  if (req.xs.quotas.exceeds(req.conn.domid!, 'node-size', nodeSize(perms, valueLength, childListLength))) {
    throw new XenError('ENOSPC', `${path} would exceed the node-size quota`);
  }
}

/**
 * core.c construct_node() + create_node(): make `path` and any missing
 * parents, each inheriting its parent's permissions, owned by the creator
 * when it is unprivileged.  All quotas are checked before anything is made,
 * so a refused write leaves nothing behind.
 */
function createNode(req: Request, path: string, value: string): Node {
  const missing: string[] = [];
  let p = path;
  let parent: Node | undefined;
  while (!(parent = req.view.get(p))) {
    missing.unshift(p);
    p = parentOf(p);
  }
  const { conn, xs } = req;
  if (!conn.privileged) {
    const owned = req.view.nodesOwnedBy(conn.domid!);
    if (xs.quotas.exceeds(conn.domid!, 'nodes', owned + missing.length)) throw new XenError('ENOSPC', `domain ${conn.domid} would own more than ${xs.quotas.limit(conn.domid!, 'nodes')} nodes`);
    checkNodeSize(req, p, parent.perms, parent.value.length, parent.childListLength() + baseName(missing[0]!).length + 1);
    for (let i = 0; i < missing.length; i++) {
      const child = missing[i + 1];
      checkNodeSize(req, missing[i]!, inheritPerms(parent.perms, conn), i === missing.length - 1 ? value.length : 0, child ? baseName(child).length + 1 : 0);
    }
  }
  let node = parent;
  for (let i = 0; i < missing.length; i++) {
    node = req.view.create(missing[i]!, i === missing.length - 1 ? value : '', inheritPerms(node.perms, conn));
  }
  return node;
}

export function doRead(req: Request): Reply {
  const node = nodeWithPerm(req, pathArg(req, oneArg(req), false), XS_PERM_READ);
  return Buffer.from(node.value, 'latin1');
}

export function doWrite(req: Request): Reply {
  const nul = req.payload.indexOf(0);
  if (nul < 0) throw new XenError('EINVAL', 'WRITE needs a NUL-terminated path before the value');
  const path = pathArg(req, req.payload.toString('latin1', 0, nul), false);
  const value = req.payload.toString('latin1', nul + 1);
  let node = existingOrMissing(req, path, XS_PERM_WRITE);
  if (node) {
    checkNodeSize(req, path, node.perms, value.length, node.childListLength());
    req.view.setValue(path, value);
  } else {
    node = createNode(req, path, value);
  }
  req.view.changed(path, node, false);
  return OK;
}

export function doMkdir(req: Request): Reply {
  const path = pathArg(req, oneArg(req), false);
  if (!existingOrMissing(req, path, XS_PERM_WRITE)) {
    const node = createNode(req, path, '');
    req.view.changed(path, node, false);
  }
  return OK;
}

export function doRm(req: Request): Reply {
  const path = pathArg(req, oneArg(req), false);
  const node = existingOrMissing(req, path, XS_PERM_WRITE);
  if (!node) {
    // "Didn't exist already?  Fine, if parent exists."
    if (req.view.get(parentOf(path))) return OK;
    throw new XenError('ENOENT', `neither ${path} nor its parent exist`);
  }
  if (path === ROOT) throw new XenError('EINVAL', 'cannot remove /');
  // Watches fire for each removed node while its permissions can still be seen
  // (core.c delnode_sub()): the named node for watches at or above it, nodes
  // below it only for watches on exactly them.
  req.view.remove(path, (p, n) => req.view.changed(p, n, p !== path));
  return OK;
}

export function doDirectory(req: Request): Reply {
  return childList(nodeWithPerm(req, pathArg(req, oneArg(req), false), XS_PERM_READ));
}

/**
 * core.c send_directory_part(): the node's generation, then as many whole
 * child names from byte `offset` of the child list as fit; an extra NUL
 * marks the end of the list.
 */
export function doDirectoryPart(req: Request): Reply {
  const [path, offText] = exactly(req, 2);
  const node = nodeWithPerm(req, pathArg(req, path, false), XS_PERM_READ);
  const off = Number.parseInt(offText!, 10) || 0;
  const all = childList(node);
  const gen = Buffer.from(`${node.generation}\0`, 'latin1');
  if (off < 0 || off >= all.length) return Buffer.concat([gen, Buffer.of(0)]);
  const maxLen = XENSTORE_PAYLOAD_MAX - gen.length - 1;
  let len = 0;
  for (;;) {
    const end = all.indexOf(0, off + len);
    const next = end - (off + len);
    if (end < 0 || len + next >= maxLen) break;
    len += next + 1;
    if (off + len === all.length) break;
  }
  const parts = [gen, all.subarray(off, off + len)];
  if (off + len === all.length) parts.push(Buffer.of(0));
  return Buffer.concat(parts);
}

export function doGetPerms(req: Request): Reply {
  const node = nodeWithPerm(req, pathArg(req, oneArg(req), true), XS_PERM_READ);
  return Buffer.from(formatPerms(node.perms).map((p) => `${p}\0`).join(''), 'latin1');
}

export function doSetPerms(req: Request): Reply {
  const [rawPath, ...permTexts] = atLeast(req, 2);
  const { conn, xs } = req;
  if (!conn.privileged && xs.quotas.exceeds(conn.domid!, 'node-permissions', permTexts.length)) {
    throw new XenError('ENOSPC', `more than ${xs.quotas.limit(conn.domid!, 'node-permissions')} permissions`);
  }
  const perms = parsePerms(permTexts);
  const path = pathArg(req, rawPath, true);
  // "We must own node to do this (tools can do this too)."
  const node = nodeWithPerm(req, path, XS_PERM_WRITE | XS_PERM_OWNER);
  if (!conn.privileged && ownerOf(perms) !== ownerOf(node.perms)) throw new XenError('EPERM', 'only the privileged domain may change a node\'s owner');
  checkNodeSize(req, path, perms, node.value.length, node.childListLength());
  const oldPerms = node.perms;
  req.view.setPerms(path, perms);
  req.view.changed(path, req.view.get(path), false, oldPerms);
  return OK;
}
