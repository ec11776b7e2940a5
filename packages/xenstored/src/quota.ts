/**
 * Quotas, as C xenstored keeps them (tools/xenstored/domain.c hard_quotas[],
 * soft_quotas[]): global values settable with CONTROL quota / SET_QUOTA, a
 * per-domain override (SET_QUOTA <domid>), and the largest value seen for
 * `xenstore-control quota max`.  Quotas bind unprivileged domains only; a
 * value of 0 disables a quota.
 */
import { XS_QUOTA_DEFAULTS, XS_QUOTA_NAMES, XS_SOFT_QUOTA_DEFAULTS, XenError, type XsQuotaName } from '@xenbox/abi';

export type QuotaValues = Record<XsQuotaName, number>;

export class Quotas {
  readonly hard: QuotaValues = { ...XS_QUOTA_DEFAULTS };
  readonly soft: Partial<QuotaValues> = { ...XS_SOFT_QUOTA_DEFAULTS };
  private readonly perDomain = new Map<number, Partial<QuotaValues>>();
  /** Largest value seen per quota, over all unprivileged domains. */
  readonly maxSeen: Partial<QuotaValues> = {};
  private readonly maxSeenByDomain = new Map<number, Partial<QuotaValues>>();

  /** The quota that binds `domid`. */
  limit(domid: number, name: XsQuotaName): number {
    return this.perDomain.get(domid)?.[name] ?? this.hard[name];
  }

  /** Is `value` over `domid`'s quota?  Records it for `quota max` either way. */
  exceeds(domid: number, name: XsQuotaName, value: number): boolean {
    this.record(domid, name, value);
    const limit = this.limit(domid, name);
    return limit > 0 && value > limit;
  }

  setGlobal(name: string, value: number): void {
    this.hard[checkName(name)] = checkValue(value);
  }

  setSoft(name: string, value: number): void {
    const n = checkName(name);
    if (!(n in XS_SOFT_QUOTA_DEFAULTS)) throw new XenError('EINVAL', `${name} has no soft quota`);
    this.soft[n] = checkValue(value);
  }

  setForDomain(domid: number, name: string, value: number): void {
    const n = checkName(name);
    const q = this.perDomain.get(domid) ?? {};
    q[n] = checkValue(value);
    this.perDomain.set(domid, q);
  }

  forgetDomain(domid: number): void {
    this.perDomain.delete(domid);
    this.maxSeenByDomain.delete(domid);
  }

  domainMax(domid: number, name: XsQuotaName): number {
    return this.maxSeenByDomain.get(domid)?.[name] ?? 0;
  }

  resetMax(): void {
    for (const n of XS_QUOTA_NAMES) delete this.maxSeen[n];
    this.maxSeenByDomain.clear();
  }

  /** What persistence.ts saves. */
  snapshot(): { hard: QuotaValues; soft: Partial<QuotaValues>; perDomain: Array<[number, Partial<QuotaValues>]> } {
    return { hard: { ...this.hard }, soft: { ...this.soft }, perDomain: [...this.perDomain] };
  }

  restore(s: ReturnType<Quotas['snapshot']>): void {
    Object.assign(this.hard, s.hard);
    Object.assign(this.soft, s.soft);
    this.perDomain.clear();
    for (const [d, q] of s.perDomain) this.perDomain.set(d, q);
  }

  private record(domid: number, name: XsQuotaName, value: number): void {
    if (value > (this.maxSeen[name] ?? 0)) this.maxSeen[name] = value;
    let m = this.maxSeenByDomain.get(domid);
    if (!m) this.maxSeenByDomain.set(domid, (m = {}));
    if (value > (m[name] ?? 0)) m[name] = value;
  }
}

export function checkName(name: string): XsQuotaName {
  if (!(XS_QUOTA_NAMES as readonly string[]).includes(name)) throw new XenError('EINVAL', `unknown quota ${JSON.stringify(name)}; known: ${XS_QUOTA_NAMES.join(' ')}`);
  return name as XsQuotaName;
}

function checkValue(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new XenError('EINVAL', `quota value ${v} out of range`);
  return v;
}
