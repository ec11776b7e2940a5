/**
 * Mirrors (DESIGN §4): a process cannot map another process's memory, so a
 * domain process that uses a page — one of its own, or a grant it mapped —
 * holds a copy.  The hypervisor remembers which copies exist and what
 * version of the page each last saw; before it delivers an event to the
 * holder it sends every stale copy (`mirror.refresh`), and a holder's
 * writes come back as `mirror.flush` before it notifies.
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
}

export class MirrorTable {
  private readonly mirrors = new Map<number, Mirror>();
  private nextMid = 1;

  constructor(private readonly holder: DomId) {}

  add(page: Page, peerKey: string, writable: boolean, kind: 'own' | 'grant', handle: number | null): Mirror {
    const m: Mirror = { mid: this.nextMid++, holder: this.holder, peerKey, page, writable, kind, handle, seen: page.version };
    this.mirrors.set(m.mid, m);
    page.mirrors.add(m);
    return m;
  }

  get(mid: number): Mirror | undefined {
    return this.mirrors.get(mid);
  }

  remove(m: Mirror): void {
    this.mirrors.delete(m.mid);
    m.page.mirrors.delete(m);
  }

  /** Mirrors whose holder has not seen the page's latest contents. */
  stale(): Mirror[] {
    const out: Mirror[] = [];
    for (const m of this.mirrors.values()) if (m.page.volatile || m.seen !== m.page.version) out.push(m);
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
