/**
 * What the message handlers see of the store: the live tree, or a
 * transaction's private view of it.  Both offer the same primitive changes,
 * so every operation is written once (C xenstored gets the same effect by
 * prefixing transaction nodes' names in its one hashtable, transaction.c).
 */
import type { Node } from './node.js';
import type { Perms } from './permissions.js';

export interface NodeView {
  /** The node at `path` (in a transaction this records the read). */
  get(path: string): Node | undefined;
  /** Create `path` under its existing parent. */
  create(path: string, value: string, perms: Perms): Node;
  setValue(path: string, value: string): void;
  setPerms(path: string, perms: Perms): void;
  /** Remove `path` and everything below it; `visit` sees each node (deepest first) before it goes. */
  remove(path: string, visit: (path: string, node: Node) => void): void;
  /**
   * A node changed: fire the watches now, or, in a transaction, when it
   * commits.  `exact` only fires watches on exactly this path (children of a
   * removed node, core.c delnode_sub()); `oldPerms` lets a watcher that just
   * lost access still hear about it (watch.c watch_permitted()).
   */
  changed(path: string, node: Node | undefined, exact: boolean, oldPerms?: Perms): void;
  /** Nodes `domid` owns, as this view sees them (for the nodes quota). */
  nodesOwnedBy(domid: number): number;
}
