/**
 * Finding guests' console rings, as xenconsoled's daemon/io.c does: it
 * watches @introduceDomain and @releaseDomain, and on each event looks over
 * the domains (enum_domains()); a guest whose /local/domain/<d>/console has
 * type "xenconsoled", a ring-ref and a port is connected (domain_create_ring():
 * map grant GNTTAB_RESERVED_CONSOLE, bind the port), one that is gone is
 * disconnected.
 */
import { GNTTAB_RESERVED_CONSOLE, type DomId } from '@xenbox/abi';
import { Evtchn, GrantMapper, mapGuestRing, type DomainProcess, type XenstoreClient, type XsWatch } from '@xenbox/libxen';
import { ConsoleRing } from './console-ring.js';

export class RingConsoles {
  private readonly evtchn: Evtchn;
  private readonly mapper: GrantMapper;
  private readonly rings = new Map<DomId, ConsoleRing>();
  /** Domains being connected now (a second scan must not connect them again). */
  private readonly connecting = new Set<DomId>();
  private watches: XsWatch[] = [];
  private scanning = false;
  private rescan = false;

  constructor(
    private readonly dom: DomainProcess,
    private readonly xs: XenstoreClient,
    /** Where a guest's ring output goes (the same place as its SBI console output). */
    private readonly output: (domid: DomId, data: Uint8Array) => void,
  ) {
    this.evtchn = Evtchn.of(dom.hv);
    this.mapper = new GrantMapper(dom.hv);
  }

  async start(): Promise<void> {
    for (const path of ['@introduceDomain', '@releaseDomain']) {
      const w = await this.xs.watch(path);
      this.watches.push(w);
      void (async () => {
        for await (const _ of w) this.scan();
      })();
    }
  }

  async stop(): Promise<void> {
    for (const w of this.watches) await w.unwatch().catch(() => undefined);
    for (const r of [...this.rings.values()]) await r.close();
  }

  /** The guest reads its console ring: keyboard input belongs there. */
  takesInput(domid: DomId): boolean {
    return this.rings.get(domid)?.active ?? false;
  }

  input(domid: DomId, data: Uint8Array): void {
    this.rings.get(domid)?.write(data);
  }

  private scan(): void {
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = true;
    void (async () => {
      do {
        this.rescan = false;
        await this.scanOnce().catch((e: unknown) => this.dom.log.warn({ err: (e as Error).message }, 'looking for console rings failed'));
      } while (this.rescan);
    })().finally(() => {
      this.scanning = false;
    });
  }

  private async scanOnce(): Promise<void> {
    const live = new Map((await this.dom.hv.call('sysctl.getdomaininfolist', {})).map((d) => [d.domid, d]));
    for (const [domid, ring] of this.rings) {
      const d = live.get(domid);
      if (!d || d.dying) {
        this.rings.delete(domid);
        await ring.close();
      }
    }
    for (const d of live.values()) {
      if (d.kind !== 'pvh' || d.dying || this.rings.has(d.domid) || this.connecting.has(d.domid)) continue;
      this.connecting.add(d.domid);
      await this.connect(d.domid)
        .catch((e: unknown) => this.dom.log.warn({ dom: d.domid, err: (e as Error).message }, 'cannot connect a guest console ring'))
        .finally(() => this.connecting.delete(d.domid));
    }
  }

  /**
   * Bind the guest's console port.  A previous xenconsoled (this is dom0: its
   * ports outlive the process, unlike a Linux evtchn fd's) may still hold it
   * bound; that stale dom0 end is closed first, as the kernel would have on
   * the old process's exit.
   */
  private async bindConsolePort(domid: DomId, port: number): Promise<number> {
    const st = await this.evtchn.status(port, domid);
    if (st.status === 'interdomain' && st.dom === 0 && st.port !== undefined) await this.evtchn.close(st.port);
    return this.evtchn.bindInterdomain(domid, port);
  }

  /** domain_create_ring(): the nodes the toolstack wrote, the grant, the port. */
  private async connect(domid: DomId): Promise<void> {
    const base = `/local/domain/${domid}/console`;
    const read = (key: string) => this.xs.read(`${base}/${key}`).catch(() => null);
    const [type, ref, portText] = [await read('type'), await read('ring-ref'), await read('port')];
    if (type !== 'xenconsoled' || !ref || !portText || !/^[0-9]+$/.test(portText)) return;
    const io = await mapGuestRing(this.mapper, this.evtchn, domid, GNTTAB_RESERVED_CONSOLE, Number(portText), (d, p) => this.bindConsolePort(d, p));
    const ring = new ConsoleRing(domid, io, (data) => this.output(domid, data), this.dom.log);
    this.rings.set(domid, ring);
    io.onEvent(() => ring.pump());
    ring.start();
    this.dom.log.info({ dom: domid, port: Number(portText), lport: io.port }, 'serving a guest console ring');
  }
}
