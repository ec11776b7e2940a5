/**
 * Domains (xen/common/domain.c): the table of live domains, domid
 * allocation, and each domain's identity and credential.
 *
 * Domids are allocated like Xen's domctl createdomain without a requested id:
 * a rover that moves forward and wraps below DOMID_FIRST_RESERVED, so a
 * restarted service gets a new domid rather than its old one.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  DOMID_DOM0,
  DOMID_FIRST_RESERVED,
  XenError,
  type DomId,
  type DomainInfo,
  type DomainKind,
  type ShutdownReason,
} from '@xenbox/abi';

export class Domain {
  readonly uuid = randomUUID();
  readonly createdAt = Date.now();
  /** Connection keys (ROUTER peer keys) authenticated as this domain. */
  readonly connections = new Set<string>();
  paused = false;
  dying = false;
  shutdown: ShutdownReason | null = null;

  constructor(
    readonly domid: DomId,
    readonly name: string,
    readonly kind: DomainKind,
    private readonly token: Buffer,
    readonly target: DomId | null,
  ) {}

  /** Constant-time check of a presented token. */
  tokenMatches(presented: string): boolean {
    const p = Buffer.from(presented, 'utf8');
    return p.length === this.token.length && timingSafeEqual(p, this.token);
  }

  get isPrivileged(): boolean {
    return this.domid === DOMID_DOM0;
  }

  info(): DomainInfo {
    return {
      domid: this.domid,
      name: this.name,
      uuid: this.uuid,
      kind: this.kind,
      target: this.target,
      connections: this.connections.size,
      paused: this.paused,
      dying: this.dying,
      shutdown: this.shutdown,
      createdAt: this.createdAt,
    };
  }
}

/** A random credential: 32 bytes, base64url. */
export function mintToken(): string {
  return randomBytes(32).toString('base64url');
}

export class DomainTable {
  private readonly domains = new Map<DomId, Domain>();
  private rover = 1;

  get(domid: DomId): Domain | undefined {
    return this.domains.get(domid);
  }

  require(domid: DomId): Domain {
    const d = this.domains.get(domid);
    if (!d) throw new XenError('ESRCH', `no domain ${domid}`);
    return d;
  }

  all(): Domain[] {
    return [...this.domains.values()].sort((a, b) => a.domid - b.domid);
  }

  byName(name: string): Domain | undefined {
    for (const d of this.domains.values()) if (d.name === name) return d;
    return undefined;
  }

  /** Create a domain with a fresh domid (or `domid` itself, used once for dom0). Returns it with its token. */
  create(name: string, kind: DomainKind, target: DomId | null, domid?: DomId): { domain: Domain; token: string } {
    if (this.byName(name)) throw new XenError('EEXIST', `a domain named '${name}' already exists`);
    const id = domid ?? this.allocDomId();
    if (this.domains.has(id)) throw new XenError('EEXIST', `domain ${id} already exists`);
    const token = mintToken();
    const domain = new Domain(id, name, kind, Buffer.from(token, 'utf8'), target);
    this.domains.set(id, domain);
    return { domain, token };
  }

  remove(domid: DomId): void {
    this.domains.delete(domid);
  }

  private allocDomId(): DomId {
    for (let tries = 0; tries < DOMID_FIRST_RESERVED; tries++) {
      const id = this.rover;
      this.rover = id + 1 >= DOMID_FIRST_RESERVED ? 1 : id + 1;
      if (!this.domains.has(id)) return id;
    }
    throw new XenError('ENOSPC', 'no free domain ids');
  }
}
