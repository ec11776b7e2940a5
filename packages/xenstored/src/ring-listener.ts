/**
 * Guests' way into xenstored (DESIGN §8): for each guest dom0 INTRODUCEs
 * with a ring gfn and an event channel, map the ring page through grant ref
 * GNTTAB_RESERVED_XENSTORE and bind the guest's port (domain.c
 * introduce_domain() / map_interface()), then serve it as a
 * RingConnection.  Also xenstored's ear for domain deaths: VIRQ_DOM_EXC,
 * after which the domain list says who shut down or went away
 * (domain.c domain_cleanup(): @releaseDomain for each).
 *
 * Needs the hypervisor: only the xenstored of a stack has one (main.ts);
 * the standalone daemon has no guests.
 */
import { DOMID_DOM0, GNTTAB_RESERVED_XENSTORE, VIRQ, XS_RELEASE_DOMAIN, type DomainInfo as HvDomainInfo } from '@xenbox/abi';
import { Evtchn, GrantMapper, mapGuestRing, type HypervisorConnection, type Logger } from '@xenbox/libxen';
import { RingConnection } from './ring-connection.js';
import type { Xenstored } from './xenstored.js';

/** What doIntroduce tells the transport (xenstored.ts `rings`). */
export interface RingTransport {
  introduce(domid: number, gfn: number, port: number): void;
}

export class RingListener implements RingTransport {
  private readonly evtchn: Evtchn;
  private readonly mapper: GrantMapper;
  private readonly rings = new Map<number, RingConnection>();
  /** Per domain, the last set-up or tear-down still running (they must not interleave). */
  private readonly chains = new Map<number, Promise<unknown>>();
  private virqPort: number | null = null;
  private checking = false;
  private recheck = false;

  constructor(
    private readonly xs: Xenstored,
    private readonly hv: HypervisorConnection,
    private readonly log: Logger,
  ) {
    this.evtchn = Evtchn.of(hv);
    this.mapper = new GrantMapper(hv);
  }

  /** Bind VIRQ_DOM_EXC and reconnect the rings of guests introduced before a restart. */
  async start(): Promise<void> {
    this.xs.rings = this;
    try {
      this.virqPort = await this.evtchn.bindVirq(VIRQ.DOM_EXC);
      this.evtchn.onEvent(this.virqPort, () => this.checkDomains());
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cannot bind VIRQ_DOM_EXC: shutdowns will be known only from RELEASE');
    }
    for (const d of this.xs.domains.all()) {
      if (d.introduced && d.ring) this.introduce(d.domid, d.ring.gfn, d.ring.port);
    }
    this.checkDomains();
  }

  /** The ring connection of a guest, if it has one (tests). */
  ring(domid: number): RingConnection | undefined {
    return this.rings.get(domid);
  }

  /** (Re-)INTRODUCE: any old ring of the domain goes, then the new one is mapped and bound. */
  introduce(domid: number, gfn: number, port: number): void {
    this.serially(domid, async () => {
      await this.rings.get(domid)?.close('re-introduced');
      await this.connect(domid, gfn, port).catch((e: unknown) => {
        this.log.error({ dom: domid, gfn, port, err: (e as Error).message }, 'cannot connect to the guest\'s xenstore ring (will serve it once re-introduced)');
      });
    });
  }

  async close(): Promise<void> {
    for (const rc of [...this.rings.values()]) await rc.close('xenstored stopping');
  }

  private serially(domid: number, fn: () => Promise<void>): void {
    const next = (this.chains.get(domid) ?? Promise.resolve()).then(fn, fn);
    this.chains.set(domid, next);
    void next.finally(() => {
      if (this.chains.get(domid) === next) this.chains.delete(domid);
    });
  }

  private async connect(domid: number, gfn: number, port: number): Promise<void> {
    // map_interface(): the page the guest granted us with the reserved ref (the gfn names the same page).
    const ring = await mapGuestRing(this.mapper, this.evtchn, domid, GNTTAB_RESERVED_XENSTORE, port);
    const rc: RingConnection = new RingConnection(this.xs, domid, gfn, port, {
      ...ring,
      teardown: async () => {
        if (this.rings.get(domid) === rc) this.rings.delete(domid);
        await ring.teardown();
      },
    }, this.log);
    this.rings.set(domid, rc);
    ring.onEvent(() => rc.pump());
    const features = this.xs.domains.get(domid)?.features ?? 0;
    rc.start(features);
    this.log.info({ dom: domid, gfn, port, lport: ring.port }, 'serving a guest\'s xenstore ring');
  }

  /**
   * VIRQ_DOM_EXC (domain.c domain_cleanup()): every introduced domain that
   * is gone or dying is released (its connections, its nodes,
   * @releaseDomain); one newly shut down fires @releaseDomain once (RESUME
   * re-arms it).
   */
  private checkDomains(): void {
    if (this.checking) {
      this.recheck = true;
      return;
    }
    this.checking = true;
    void (async () => {
      do {
        this.recheck = false;
        const asked = this.xs.domains.introductionCount;
        let list: HvDomainInfo[];
        try {
          list = await this.hv.call('sysctl.getdomaininfolist', {});
        } catch (e) {
          this.log.warn({ err: (e as Error).message }, 'cannot list domains after VIRQ_DOM_EXC');
          break;
        }
        if (this.reconcile(new Map(list.map((d) => [d.domid, d])), asked)) this.recheck = true;
      } while (this.recheck);
    })().finally(() => {
      this.checking = false;
    });
  }

  /**
   * Release what the list says is gone, mark what it says shut down.  A
   * domain introduced after the list was asked for is not in it (the
   * toolstack made it meanwhile): it is left alone, and true asks for a
   * fresh list.
   */
  private reconcile(live: Map<number, HvDomainInfo>, asked: number): boolean {
    let fire = false;
    let newer = false;
    for (const d of this.xs.domains.all()) {
      if (d.domid === DOMID_DOM0 || !d.introduced) continue;
      if (this.xs.domains.introducedSince(d.domid, asked)) {
        newer = true;
        continue;
      }
      const info = live.get(d.domid);
      if (!info || info.dying) {
        this.log.info({ dom: d.domid }, 'domain gone: releasing it');
        this.xs.releaseDomain(d.domid);
      } else if (info.shutdown !== null && !d.shutdown) {
        this.log.info({ dom: d.domid, reason: info.shutdown }, 'domain shut down');
        this.xs.domains.update(d.domid, { shutdown: true });
        fire = true;
      }
    }
    if (fire) this.xs.fireSpecial(XS_RELEASE_DOMAIN);
    return newer;
  }
}
