/**
 * One node of the store (struct node in tools/xenstored/core.h): a value,
 * permissions, the names of its children in creation order and the
 * generation count of its last change.
 *
 * Values are kept as latin1 strings: binary-safe (one char per byte) and far
 * lighter than a Buffer per node, which matters at a million nodes.
 */
import type { Perms } from './permissions.js';

export const NO_CHILDREN: readonly string[] = Object.freeze([]);

export class Node {
  /** The DIRECTORY reply, kept between calls: DIRECTORY_PART asks for it again for each slice of a big list. */
  listCache: Buffer | undefined = undefined;

  constructor(
    public value: string,
    public perms: Perms,
    /** Shared NO_CHILDREN until the first child arrives (copy on write). */
    public children: readonly string[],
    public generation: number,
  ) {}

  addChild(name: string): void {
    this.listCache = undefined;
    if (this.children === NO_CHILDREN) this.children = [name];
    else (this.children as string[]).push(name);
  }

  removeChild(name: string): void {
    this.listCache = undefined;
    const i = this.children.indexOf(name);
    if (i < 0) return;
    if (this.children.length === 1) this.children = NO_CHILDREN;
    else (this.children as string[]).splice(i, 1);
  }

  /** A private copy for a transaction: value and perms are immutable and shared. */
  clone(): Node {
    return new Node(this.value, this.perms, this.children === NO_CHILDREN ? NO_CHILDREN : this.children.slice(), this.generation);
  }

  /** Bytes of the NUL-terminated child list (node->hdr.childlen). */
  childListLength(): number {
    let n = 0;
    for (const c of this.children) n += c.length + 1;
    return n;
  }
}

/** The children as the DIRECTORY reply carries them: each name NUL-terminated. */
export function childList(node: Node): Buffer {
  if (node.listCache) return node.listCache;
  const len = node.childListLength();
  const out = Buffer.allocUnsafe(len);
  let off = 0;
  for (const c of node.children) {
    off += out.write(c, off, 'latin1');
    out[off++] = 0;
  }
  // Small lists are cheap to rebuild; only big ones are worth the memory.
  if (len > 1024) node.listCache = out;
  return out;
}
