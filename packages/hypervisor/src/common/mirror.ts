/**
 * Mirrors (DESIGN §4): a process cannot map another process's memory, so a
 * domain process that uses a page — one of its own, or a grant it mapped —
 * holds a copy.  The hypervisor remembers which copies exist and what
 * version of the page each last saw; before it delivers an event to the
 * holder it sends every stale copy (`mirror.refresh`), and a holder's
 * writes come back as `mirror.flush` before it notifies.
 *
 * Finding the stale copies costs what changed, not what is held: a write to
 * a page (Page.touch) puts its mirrors on their holders' `changed` sets, and
 * delivery takes only those (plus mirrors of volatile guest RAM, which
 * change unseen).
 */
import type { DomId } from '@xenbox/abi';
import type { Page } from './page.js';

export interface Mirror {
  readonly mid: number;
  readonly holder: DomId;
  /** The connection that holds the copy (refreshes go to it alone). */
  readonly peerKey: string;
  readonly page: Page;
  readonly writable: boolean;
  /** 'own' for the holder's own page, 'grant' for a mapped grant (then `handle` is its maptrack handle). */
  readonly kind: 'own' | 'grant';
  readonly handle: number | null;
  /** Page version the holder's copy reflects. */
  seen: number;
  /** The holder's set of mirrors whose page was written since they were last sent (see Page.touch). */
  readonly changed: Set<Mirror>;
}

export class MirrorTable {
  private readonly mirrors = new Map<number, Mirror>();
  /** Mirrors whose page was written since their last snapshot (may hold some already current again). */
  private readonly changed = new Set<Mirror>();
  /** Mirrors of volatile pages (guest RAM): always refreshed. */
  private readonly volatile = new Set<Mirror>();
  private nextMid = 1;

  constructor(private readonly holder: DomId) {}

  add(page: Page, peerKey: string, writable: boolean, kind: 'own' | 'grant', handle: number | null): Mirror {
    const m: Mirror = { mid: this.nextMid++, holder: this.holder, peerKey, page, writable, kind, handle, seen: page.version, changed: this.changed };
    this.mirrors.set(m.mid, m);
    if (page.volatile) this.volatile.add(m);
    page.mirrors.add(m);
    return m;
  }

  get(mid: number): Mirror | undefined {
    return this.mirrors.get(mid);
  }

  remove(m: Mirror): void {
    this.mirrors.delete(m.mid);
    this.changed.delete(m);
    this.volatile.delete(m);
    m.page.mirrors.delete(m);
  }

  /**
   * Take the mirrors whose holder has not seen the page's latest contents:
   * the caller sends them all (snapshot), so the change set starts afresh.
   * O(pages written since the last call + volatile mirrors).
   */
  takeStale(): Mirror[] {
    const out: Mirror[] = [];
    if (this.changed.size !== 0) {
      for (const m of this.changed) if (m.seen !== m.page.version && !m.page.volatile) out.push(m);
      this.changed.clear();
    }
    for (const m of this.volatile) out.push(m);
    return out;
  }

  /** Mirrors whose holder has not seen the page's latest contents (without taking them). */
  stale(): Mirror[] {
    const out: Mirror[] = [];
    for (const m of this.mirrors.values()) if (m.page.volatile || m.seen !== m.page.version) out.push(m);
    return out;
  }

  /** Mirrors held by one connection (to drop them when it goes). */
  heldBy(peerKey: string): Mirror[] {
    const out: Mirror[] = [];
    for (const m of this.mirrors.values()) if (m.peerKey === peerKey) out.push(m);
    return out;
  }

  get size(): number {
    return this.mirrors.size;
  }

  all(): Mirror[] {
    return [...this.mirrors.values()];
  }
}

/** A copy of the page for the wire, marking the mirror as up to date. */
export function snapshot(m: Mirror): Uint8Array {
  m.seen = m.page.version;
  return m.page.bytes.slice();
}
