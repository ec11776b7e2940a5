/**
 * The live tree: a flat map from path to node, like C xenstored's nodes
 * hashtable (tools/xenstored/core.c), plus the global generation counter
 * and per-domain node counts for the nodes quota.
 *
 * Every change goes through four primitives (create, setValue, setPerms,
 * remove), each of which is reported to the journal so that a restarted
 * xenstored can replay it (persistence.ts).
 */
import { XS_INTRODUCE_DOMAIN, XS_PERM_NONE, XS_PERM_READ, XS_RELEASE_DOMAIN, DOMID_ANY, XenError } from '@xenbox/abi';
import { NO_CHILDREN, Node } from './node.js';
import { baseName, childPath, parentOf, ROOT } from './path.js';
import { ownerOf, type Perms } from './permissions.js';
import type { NodeView } from './view.js';

/** NO_GENERATION in core.h: what a missing node "has". */
export const NO_GENERATION = -1;

export type JournalRecord =
  | { op: 'create'; path: string; value: string; perms: Perms }
  | { op: 'value'; path: string; value: string }
  | { op: 'perms'; path: string; perms: Perms }
  | { op: 'remove'; path: string };

export type WatchFirer = (path: string, node: Node | undefined, exact: boolean, oldPerms?: Perms) => void;

const DOM0_NONE: Perms = Object.freeze([{ id: 0, bits: XS_PERM_NONE }]);
/** @releaseDomain is readable by every domain (DOMID_ANY), so guests can watch for their peers' death. */
const RELEASE_DOMAIN_PERMS: Perms = Object.freeze([{ id: 0, bits: XS_PERM_NONE }, { id: DOMID_ANY, bits: XS_PERM_READ }]);

export class Store implements NodeView {
  private readonly nodes = new Map<string, Node>();
  private readonly owned = new Map<number, number>();
  generation = 0;
  /** Called with every change once it is made (the journal). */
  journal: ((rec: JournalRecord) => void) | null = null;
  /** Fires watches for changes to the live tree. */
  fire: WatchFirer = () => {};

  constructor() {
    this.createInitialTree();
  }

  /** core.c setup_structure(): "/", "/tool", "/tool/xenstored" and the two special nodes, all owned by dom0. */
  private createInitialTree(): void {
    this.put(ROOT, new Node('', DOM0_NONE, NO_CHILDREN, ++this.generation));
    for (const p of ['/tool', '/tool/xenstored']) this.attach(p, new Node('', DOM0_NONE, NO_CHILDREN, ++this.generation));
    this.put(XS_RELEASE_DOMAIN, new Node('', RELEASE_DOMAIN_PERMS, NO_CHILDREN, ++this.generation));
    this.put(XS_INTRODUCE_DOMAIN, new Node('', DOM0_NONE, NO_CHILDREN, ++this.generation));
  }

  get size(): number {
    return this.nodes.size;
  }

  get(path: string): Node | undefined {
    return this.nodes.get(path);
  }

  has(path: string): boolean {
    return this.nodes.has(path);
  }

  nodesOwnedBy(domid: number): number {
    return this.owned.get(domid) ?? 0;
  }

  /** Domains that own at least one node. */
  owners(): number[] {
    return [...this.owned.keys()];
  }

  create(path: string, value: string, perms: Perms): Node {
    if (this.nodes.has(path)) throw new XenError('EEXIST', `${path} exists`);
    const parent = this.nodes.get(parentOf(path));
    if (!parent) throw new XenError('ENOENT', `parent of ${path} missing`);
    const node = new Node(value, perms, NO_CHILDREN, ++this.generation);
    this.attach(path, node);
    this.journal?.({ op: 'create', path, value, perms });
    return node;
  }

  setValue(path: string, value: string): void {
    const node = this.must(path);
    node.value = value;
    node.generation = ++this.generation;
    this.journal?.({ op: 'value', path, value });
  }

  setPerms(path: string, perms: Perms): void {
    const node = this.must(path);
    this.count(ownerOf(node.perms), -1);
    node.perms = perms;
    this.count(ownerOf(perms), +1);
    node.generation = ++this.generation;
    this.journal?.({ op: 'perms', path, perms });
  }

  remove(path: string, visit: (path: string, node: Node) => void = () => {}): void {
    const node = this.must(path);
    if (path === ROOT) throw new XenError('EINVAL', 'cannot remove /');
    this.removeSubtree(path, node, visit);
    const parent = this.nodes.get(parentOf(path));
    if (parent) {
      parent.removeChild(baseName(path));
      parent.generation = ++this.generation;
    }
    this.journal?.({ op: 'remove', path });
  }

  changed(path: string, node: Node | undefined, exact: boolean, oldPerms?: Perms): void {
    this.fire(path, node, exact, oldPerms);
  }

  /** Depth-first over `root` and below, parents before children (core.c walk_node_tree()). */
  *walk(root: string): Generator<[string, Node]> {
    const node = this.nodes.get(root);
    if (!node) return;
    yield [root, node];
    for (const c of [...node.children]) yield* this.walk(childPath(root, c));
  }

  private removeSubtree(path: string, node: Node, visit: (path: string, node: Node) => void): void {
    for (const c of node.children) {
      const p = childPath(path, c);
      const child = this.nodes.get(p);
      if (child) this.removeSubtree(p, child, visit);
    }
    visit(path, node);
    this.nodes.delete(path);
    this.count(ownerOf(node.perms), -1);
  }

  private attach(path: string, node: Node): void {
    const parent = this.nodes.get(parentOf(path))!;
    parent.addChild(baseName(path));
    parent.generation = ++this.generation;
    this.put(path, node);
  }

  private put(path: string, node: Node): void {
    this.nodes.set(path, node);
    this.count(ownerOf(node.perms), +1);
  }

  private count(domid: number, delta: number): void {
    const n = (this.owned.get(domid) ?? 0) + delta;
    if (n > 0) this.owned.set(domid, n);
    else this.owned.delete(domid);
  }

  private must(path: string): Node {
    const node = this.nodes.get(path);
    if (!node) throw new XenError('ENOENT', `${path} does not exist`);
    return node;
  }
}
