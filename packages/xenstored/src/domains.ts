/**
 * The domains xenstored knows (struct domain in tools/xenstored/domain.c):
 * introduced or not, the SET_TARGET target, the feature bits, and -- xenbox's
 * addition -- the secret a process domain proves itself with on the ZeroMQ
 * socket (docs/xenstored.md).
 *
 * dom0 is always introduced: C xenstored introduces the master domain
 * itself at start (domain.c dom0_init()).
 */
import {
  DOMID_DOM0,
  XENSTORE_SERVER_FEATURE_DOMID_ANY,
  XENSTORE_SERVER_FEATURE_ERROR,
  XENSTORE_SERVER_FEATURE_RECONNECTION,
  XENSTORE_SERVER_FEATURE_WATCHDEPTH,
} from '@xenbox/abi';

/** What xenbox's xenstored implements: ring reconnection and the error field (ring-connection.ts), watch depth, DOMID_ANY permissions. */
export const SERVER_FEATURES =
  XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR | XENSTORE_SERVER_FEATURE_WATCHDEPTH | XENSTORE_SERVER_FEATURE_DOMID_ANY;

export interface DomainInfo {
  domid: number;
  introduced: boolean;
  /** Secret a ZeroMQ peer must present to be this domain; undefined: none can. */
  secret: string | undefined;
  target: number | undefined;
  features: number;
  /** Shut down (reported via @releaseDomain); RESUME clears it. */
  shutdown: boolean;
  /** A guest's ring page and its port, from INTRODUCE (kept so a restarted xenstored can serve it again). */
  ring?: { gfn: number; port: number };
}

export class Domains {
  private readonly map = new Map<number, DomainInfo>();
  /**
   * INTRODUCEs so far, and which one made each domain what it is now: a list
   * of the hypervisor's domains asked for before a domain's introduction
   * does not know it, and must not make xenstored release it.
   */
  private introductions = 0;
  private readonly introducedBy = new Map<number, number>();
  /** Told about every change, for the journal. */
  journal: ((d: DomainInfo | { domid: number; gone: true }) => void) | null = null;

  constructor() {
    this.map.set(DOMID_DOM0, { domid: DOMID_DOM0, introduced: true, secret: undefined, target: undefined, features: SERVER_FEATURES, shutdown: false });
  }

  get(domid: number): DomainInfo | undefined {
    return this.map.get(domid);
  }

  isIntroduced(domid: number): boolean {
    return this.map.get(domid)?.introduced ?? false;
  }

  all(): DomainInfo[] {
    return [...this.map.values()];
  }

  /** Find or make the record of a domain not (yet) introduced. */
  ensure(domid: number): DomainInfo {
    let d = this.map.get(domid);
    if (!d) this.map.set(domid, (d = { domid, introduced: false, secret: undefined, target: undefined, features: SERVER_FEATURES, shutdown: false }));
    return d;
  }

  update(domid: number, change: Partial<Omit<DomainInfo, 'domid'>>): DomainInfo {
    const d = Object.assign(this.ensure(domid), change);
    this.journal?.({ ...d });
    return d;
  }

  /** Count an INTRODUCE of domid (see introductions). */
  noteIntroduction(domid: number): void {
    this.introducedBy.set(domid, ++this.introductions);
  }

  /** Where the count of INTRODUCEs stands (take it before asking the hypervisor for its domains). */
  get introductionCount(): number {
    return this.introductions;
  }

  /** Was domid introduced after the count stood at `count`? */
  introducedSince(domid: number, count: number): boolean {
    return (this.introducedBy.get(domid) ?? 0) > count;
  }

  forget(domid: number): void {
    if (domid === DOMID_DOM0) return;
    this.introducedBy.delete(domid);
    this.map.delete(domid);
    this.journal?.({ domid, gone: true });
  }

  /** Used when replaying the journal. */
  restore(d: DomainInfo | { domid: number; gone: true }): void {
    if ('gone' in d) this.map.delete(d.domid);
    else this.map.set(d.domid, { ...d });
  }
}
