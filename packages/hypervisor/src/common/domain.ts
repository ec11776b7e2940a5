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
  GUEST_DEFAULT_MAX_MEM_KB,
  MAX_VCPUS_DEFAULT,
  PROCESS_DEFAULT_MAX_MEM_KB,
  PROCESS_DOMAIN_KINDS,
  SHUTDOWN_CODES,
  XenError,
  type DomId,
  type DomainCreateFlag,
  type DomainInfo,
  type DomainKind,
  type ShutdownReason,
} from '@xenbox/abi';
import { EventChannels } from './event-channel.js';
import { GrantTable } from './grant-table.js';
import { HostMemory } from './host-memory.js';
import { DomainMemory, kbToPages } from './memory.js';
import { MirrorTable } from './mirror.js';

/** What createdomain may set besides name, kind and target. */
export interface DomainConfig {
  uuid?: string;
  flags?: DomainCreateFlag[];
  maxMemKb?: number;
  maxVcpus?: number;
  maxGrantFrames?: number;
  maxMaptrackFrames?: number;
  maxEvtchnPort?: number;
}

export class Domain {
  readonly uuid: string;
  readonly createdAt = Date.now();
  /** Connection keys (ROUTER peer keys) authenticated as this domain. */
  readonly connections = new Set<string>();
  paused = false;
  dying = false;
  shutdown: ShutdownReason | null = null;
  readonly flags: DomainCreateFlag[];
  maxVcpus: number;
  vcpusOnline: number;
  /** Set by the vCPU layer while one of its vCPUs is on a pCPU. */
  running = false;
  /** Accumulated vCPU run time (the vCPU layer adds to it), ns. */
  cpuTimeNs = 0;
  readonly memory: DomainMemory;
  readonly grants: GrantTable;
  readonly evtchn: EventChannels;
  readonly mirrors: MirrorTable;
  /** Pending set_timer_op timer (VIRQ_TIMER). */
  timer: NodeJS.Timeout | null = null;

  constructor(
    readonly domid: DomId,
    /** Xen keeps names in xenstore only; xenbox's hypervisor lists domains, so it knows them too (`xl rename` tells it). */
    public name: string,
    readonly kind: DomainKind,
    private readonly token: Buffer,
    readonly target: DomId | null,
    host: HostMemory = new HostMemory(),
    config: DomainConfig = {},
  ) {
    this.uuid = config.uuid ?? randomUUID();
    this.flags = [...new Set<DomainCreateFlag>([...(config.flags ?? []), ...(kind === 'hvm' ? (['hvm'] as const) : [])])];
    this.maxVcpus = config.maxVcpus ?? MAX_VCPUS_DEFAULT;
    this.vcpusOnline = this.isProcess ? 1 : this.maxVcpus;
    const maxKb = config.maxMemKb ?? (this.isProcess ? PROCESS_DEFAULT_MAX_MEM_KB : GUEST_DEFAULT_MAX_MEM_KB);
    this.memory = new DomainMemory(host, !this.isProcess, kbToPages(maxKb), `d${domid}`);
    this.grants = new GrantTable(this.memory, config.maxGrantFrames, config.maxMaptrackFrames);
    this.evtchn = new EventChannels(config.maxEvtchnPort, this.maxVcpus);
    this.mirrors = new MirrorTable(domid);
  }

  /** A process (dom0, service, stubdom) rather than RISC-V guest code. */
  get isProcess(): boolean {
    return PROCESS_DOMAIN_KINDS.includes(this.kind);
  }

  /** Constant-time check of a presented token. */
  tokenMatches(presented: string): boolean {
    const p = Buffer.from(presented, 'utf8');
    return p.length === this.token.length && timingSafeEqual(p, this.token);
  }

  get isPrivileged(): boolean {
    return this.domid === DOMID_DOM0;
  }

  /** Where a guest's run time comes from once its vCPUs run (set by the vCPU layer). */
  vcpuStats: (() => { cpuTimeNs: number; running: boolean; vcpusOnline: number } | null) | null = null;

  info(): DomainInfo {
    const stats = this.vcpuStats?.();
    if (stats) {
      this.cpuTimeNs = stats.cpuTimeNs;
      this.running = stats.running;
      this.vcpusOnline = stats.vcpusOnline;
    }
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
      flags: this.flags,
      totPages: this.memory.totPages,
      maxPages: this.memory.maxPages,
      grantFrames: this.grants.nrFrames,
      evtchnPorts: this.evtchn.portsInUse,
      maxVcpus: this.maxVcpus,
      vcpusOnline: this.vcpusOnline,
      cpuTimeNs: this.cpuTimeNs,
      state: this.stateLetters(),
      shutdownCode: this.shutdown === null ? null : SHUTDOWN_CODES[this.shutdown],
    };
  }

  /**
   * xl list's six state letters (tools/xl/xl_info.c): running, blocked,
   * paused, shutdown, crashed, dying.  A process domain is blocked unless
   * the vCPU layer marks it running, as an idle Xen domain is.
   */
  stateLetters(): string {
    // tools/xl/xl_list.c: shutdown_reason_letters[] = "-rscwS", indexed by the reason.
    const reasonLetter = this.shutdown === null ? '-' : '-rscwS'[SHUTDOWN_CODES[this.shutdown]]!;
    const running = this.running && this.shutdown === null;
    const letters: Array<[boolean, string]> = [
      [running, 'r'],
      [!running && !this.paused && this.shutdown === null && !this.dying, 'b'],
      [this.paused, 'p'],
      [this.shutdown !== null, 's'],
      [reasonLetter !== '-', reasonLetter],
      [this.dying, 'd'],
    ];
    return letters.map(([on, ch]) => (on ? ch : '-')).join('');
  }
}

/** A random credential: 32 bytes, base64url. */
export function mintToken(): string {
  return randomBytes(32).toString('base64url');
}

export class DomainTable {
  private readonly domains = new Map<DomId, Domain>();
  private rover = 1;

  constructor(readonly host: HostMemory = new HostMemory()) {}

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

  /** `xl rename`: names stay unique. */
  rename(d: Domain, name: string): void {
    const other = this.byName(name);
    if (other && other !== d) throw new XenError('EEXIST', `a domain named '${name}' already exists (d${other.domid})`);
    d.name = name;
  }

  byName(name: string): Domain | undefined {
    for (const d of this.domains.values()) if (d.name === name) return d;
    return undefined;
  }

  /** Create a domain with a fresh domid (or `domid` itself, used once for dom0). Returns it with its token. */
  create(name: string, kind: DomainKind, target: DomId | null, domid?: DomId, config: DomainConfig = {}): { domain: Domain; token: string } {
    if (this.byName(name)) throw new XenError('EEXIST', `a domain named '${name}' already exists`);
    if (config.uuid !== undefined && this.all().some((d) => d.uuid === config.uuid)) throw new XenError('EEXIST', `a domain with uuid ${config.uuid} already exists`);
    const id = domid ?? this.allocDomId();
    if (this.domains.has(id)) throw new XenError('EEXIST', `domain ${id} already exists`);
    const token = mintToken();
    const domain = new Domain(id, name, kind, Buffer.from(token, 'utf8'), target, this.host, config);
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
