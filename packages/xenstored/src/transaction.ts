/**
 * Transactions, with C xenstored's conflict rule (tools/xenstored/
 * transaction.c): every node a transaction touches is copied into the
 * transaction on first access together with its generation count; reads
 * and writes then use the copy.  TRANSACTION_END "T" compares each touched
 * node's generation with the live tree: any difference (changed, created or
 * deleted by someone else) is EAGAIN and nothing is applied.  Otherwise the
 * changes are replayed onto the live tree through its primitives (so they
 * are journaled like any write) and the queued watch events fire.
 */
import { XenError } from '@xenbox/abi';
import { NO_CHILDREN, Node } from './node.js';
import { baseName, parentOf, ROOT } from './path.js';
import { ownerOf, samePerms, type Perms } from './permissions.js';
import { NO_GENERATION, type Store } from './store.js';
import type { NodeView } from './view.js';

interface Access {
  /** Generation of the live node at first access (NO_GENERATION if it did not exist). */
  generation: number;
  /** Perms at first access: a watcher losing read access still hears of the change. */
  perms: Perms | undefined;
  modified: boolean;
  /** Removed in this transaction (and maybe created again). */
  removed: boolean;
  fire: 'none' | 'exact' | 'subtree';
}

function depth(path: string): number {
  if (path === ROOT) return 0;
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 0x2f) n++;
  return n;
}

export class Transaction implements NodeView {
  /** The transaction's copies; null = removed in the transaction (or known missing). */
  private readonly overlay = new Map<string, Node | null>();
  private readonly accessed = new Map<string, Access>();
  private readonly nodeDelta = new Map<number, number>();
  /** An operation failed half-way (e.g. transaction-nodes quota): the commit must not happen (core.c fail_transaction()). */
  failed = false;
  createdNodes = false;

  constructor(
    readonly id: number,
    private readonly store: Store,
    /** transaction-nodes quota for the owner (0: unlimited). */
    private readonly maxNodes: number,
  ) {}

  get accessedCount(): number {
    return this.accessed.size;
  }

  get(path: string): Node | undefined {
    const mine = this.overlay.get(path);
    if (mine !== undefined) return mine ?? undefined;
    const live = this.store.get(path);
    if (this.maxNodes > 0 && this.accessed.size >= this.maxNodes) {
      this.failed = true;
      throw new XenError('ENOSPC', `transaction touches more than ${this.maxNodes} nodes (transaction-nodes quota)`);
    }
    const copy = live ? live.clone() : null;
    this.overlay.set(path, copy);
    this.accessed.set(path, { generation: live ? live.generation : NO_GENERATION, perms: live?.perms, modified: false, removed: false, fire: 'none' });
    return copy ?? undefined;
  }

  create(path: string, value: string, perms: Perms): Node {
    const parent = this.get(parentOf(path));
    if (!parent) throw new XenError('ENOENT', `parent of ${path} missing`);
    if (this.get(path)) throw new XenError('EEXIST', `${path} exists`);
    parent.addChild(baseName(path));
    this.touch(parentOf(path));
    const node = new Node(value, perms, NO_CHILDREN, 0);
    this.overlay.set(path, node);
    this.touch(path);
    this.countOwner(ownerOf(perms), +1);
    this.createdNodes = true;
    return node;
  }

  setValue(path: string, value: string): void {
    this.must(path).value = value;
    this.touch(path);
  }

  setPerms(path: string, perms: Perms): void {
    const node = this.must(path);
    this.countOwner(ownerOf(node.perms), -1);
    node.perms = perms;
    this.countOwner(ownerOf(perms), +1);
    this.touch(path);
  }

  remove(path: string, visit: (path: string, node: Node) => void): void {
    if (path === ROOT) throw new XenError('EINVAL', 'cannot remove /');
    this.removeSubtree(path, this.must(path), visit);
    const parent = this.get(parentOf(path));
    if (parent) {
      parent.removeChild(baseName(path));
      this.touch(parentOf(path));
    }
  }

  changed(path: string, _node: Node | undefined, exact: boolean): void {
    const a = this.accessed.get(path);
    if (!a) {
      this.failed = true;
      return;
    }
    // transaction.c queue_watches(): a subtree event replaces an exact one, not the other way round.
    if (a.fire === 'none') a.fire = exact ? 'exact' : 'subtree';
    else if (!exact) a.fire = 'subtree';
  }

  nodesOwnedBy(domid: number): number {
    return this.store.nodesOwnedBy(domid) + (this.nodeDelta.get(domid) ?? 0);
  }

  /** Domains whose node count grows in this transaction, and by how much. */
  growth(): Array<[number, number]> {
    return [...this.nodeDelta].filter(([, d]) => d > 0);
  }

  /** EAGAIN if anything this transaction touched has changed in the live tree since. */
  checkConflicts(): void {
    for (const [path, a] of this.accessed) {
      const live = this.store.get(path);
      if ((live ? live.generation : NO_GENERATION) !== a.generation) throw new XenError('EAGAIN', `${path} changed during the transaction`);
    }
  }

  /**
   * Replay the changes onto the live tree: removals first (shallowest
   * first), then creations (parents first, siblings in the transaction's
   * child order so DIRECTORY lists them as the transaction did), then value
   * and permission changes; then fire the queued watches.
   */
  apply(fire: (path: string, exact: boolean, oldPerms: Perms | undefined) => void): void {
    const modified = [...this.accessed].filter(([, a]) => a.modified).map(([p]) => p);
    modified.sort((x, y) => depth(x) - depth(y));
    const created = new Set<string>();
    for (const p of modified) {
      const mine = this.overlay.get(p);
      if (this.store.has(p) && (mine === null || this.accessed.get(p)!.removed)) this.store.remove(p);
    }
    const toCreate = modified.filter((p) => this.overlay.get(p) && !this.store.has(p));
    toCreate.sort((x, y) => depth(x) - depth(y) || this.childIndex(x) - this.childIndex(y));
    for (const p of toCreate) {
      const mine = this.overlay.get(p)!;
      this.store.create(p, mine.value, mine.perms);
      created.add(p);
    }
    for (const p of modified) {
      const mine = this.overlay.get(p);
      const live = this.store.get(p);
      if (!mine || !live || created.has(p)) continue;
      if (live.value !== mine.value) this.store.setValue(p, mine.value);
      if (!samePerms(live.perms, mine.perms)) this.store.setPerms(p, mine.perms);
    }
    for (const [p, a] of this.accessed) if (a.fire !== 'none') fire(p, a.fire === 'exact', a.perms);
  }

  private childIndex(path: string): number {
    const parent = this.overlay.get(parentOf(path));
    return parent ? parent.children.indexOf(baseName(path)) : 0;
  }

  private removeSubtree(path: string, node: Node, visit: (path: string, node: Node) => void): void {
    for (const c of [...node.children]) {
      const p = path === ROOT ? `/${c}` : `${path}/${c}`;
      const child = this.get(p);
      if (child) this.removeSubtree(p, child, visit);
    }
    visit(path, node);
    this.overlay.set(path, null);
    const a = this.touch(path);
    a.removed = true;
    this.countOwner(ownerOf(node.perms), -1);
  }

  private touch(path: string): Access {
    const a = this.accessed.get(path);
    if (!a) throw new XenError('EIO', `transaction lost track of ${path}`);
    a.modified = true;
    return a;
  }

  private countOwner(domid: number, delta: number): void {
    this.nodeDelta.set(domid, (this.nodeDelta.get(domid) ?? 0) + delta);
  }

  private must(path: string): Node {
    const node = this.get(path);
    if (!node) throw new XenError('ENOENT', `${path} does not exist`);
    return node;
  }
}
