/**
 * Watches (tools/xenstored/watch.c): a connection asks to hear about changes
 * at or below a path; each change sends WATCH_EVENT <path> <token> to every
 * connection whose watch covers it and which may read the node (or its
 * parent, or could read it before a permission change).
 */
import { XS_PERM_READ } from '@xenbox/abi';
import type { Connection } from './connection.js';
import type { Node } from './node.js';
import { depthBelow, isAtOrBelow, parentOf } from './path.js';
import { permFor, type Perms } from './permissions.js';
import type { Store } from './store.js';

export interface Watch {
  /** Canonical (absolute or special) path. */
  readonly path: string;
  readonly token: string;
  /** Characters to strip from event paths: a relative watch gets relative events. */
  readonly prefixLength: number;
  /** Fire only this many levels below path (XS_WATCH depth argument); undefined: any depth. */
  readonly depth: number | undefined;
}

export class WatchRegistry {
  /** Connections with at least one watch: only these are visited on a change. */
  private readonly watchers = new Set<Connection>();

  constructor(private readonly store: Store) {}

  add(conn: Connection, w: Watch): void {
    conn.watches.push(w);
    this.watchers.add(conn);
  }

  remove(conn: Connection, path: string, token: string): boolean {
    const i = conn.watches.findIndex((w) => w.path === path && w.token === token);
    if (i < 0) return false;
    conn.watches.splice(i, 1);
    if (conn.watches.length === 0) this.watchers.delete(conn);
    return true;
  }

  forget(conn: Connection): void {
    conn.watches.length = 0;
    this.watchers.delete(conn);
  }

  get count(): number {
    let n = 0;
    for (const c of this.watchers) n += c.watches.length;
    return n;
  }

  /** watch.c fire_watches(). */
  fire(path: string, node: Node | undefined, exact: boolean, oldPerms?: Perms): void {
    for (const conn of this.watchers) {
      if (conn.closed || conn.watches.length === 0) continue;
      let permitted: boolean | undefined;
      for (const w of conn.watches) {
        if (exact ? w.path !== path : !isAtOrBelow(path, w.path)) continue;
        if (w.depth !== undefined && depthBelow(path, w.path) > w.depth) continue;
        permitted ??= this.permitted(conn, path, node, oldPerms);
        if (!permitted) break;
        conn.sendEvent(path.slice(w.prefixLength), w.token);
      }
    }
  }

  /** watch.c watch_permitted(): the old perms, the node or its parent must be readable. */
  private permitted(conn: Connection, path: string, node: Node | undefined, oldPerms: Perms | undefined): boolean {
    if (oldPerms && permFor(conn, oldPerms) & XS_PERM_READ) return true;
    const n = node ?? this.store.get(path);
    if (!n) return false;
    if (permFor(conn, n.perms) & XS_PERM_READ) return true;
    const parent = this.store.get(parentOf(path));
    return parent !== undefined && (permFor(conn, parent.perms) & XS_PERM_READ) !== 0;
  }
}
