/**
 * One virtual block device as its backend sees it: Linux xen-blkback's
 * xenbus.c (xen_blkbk_probe, frontend_changed, connect_ring, connect,
 * xen_blkif_disconnect) as a small state machine over xenstore.
 *
 *   appears (state 1)        read params/mode/device-type, open the image,
 *                            publish features -> InitWait
 *   front Initialised/Conn.  read ring-ref, event-channel, protocol; map the
 *                            ring, bind the channel, publish sizes -> Connected
 *   front Closing            -> Closing
 *   front Closed / gone      unmap, unbind -> Closed
 *   front Initialising again after Closed/Closing (a reconnect)  -> InitWait
 *   online=0 or a toolstack-written Closing  unmap, unbind -> Closed
 *   a broken ring or a bad ring setup  error/<backend path>/error, -> Closing
 *
 * Every watch event runs step(), one at a time: step() reads the current
 * states and does what is due, so missed intermediate states do not matter
 * (as Linux's "ensure we connect even when two watches fire in close
 * succession").
 */
import {
  BLKIF_MAX_INDIRECT_SEGMENTS,
  BLKIF_PROTOCOLS_64BIT,
  BLKIF_SECTOR_SIZE,
  VDISK_CDROM,
  VDISK_READONLY,
  XEN_ERRNO,
  XenError,
  XenbusState,
  deviceName,
  frontendPath,
  xenbusStateName,
  type DomId,
  type XenbusStateValue,
} from '@xenbox/abi';
import {
  notifySupervisor,
  readXenbusState,
  readXenbusUint,
  writeXenbusKeys,
  type BackendDevice,
  type Evtchn,
  type GrantMapper,
  type HypervisorConnection,
  type Logger,
  type MirrorPage,
  type XenstoreClient,
  type XsWatch,
} from '@xenbox/libxen';

import type { BlockImage, OpenImageOptions } from './image/block-image.js';
import type { CopyBatch } from './copy-batch.js';
import { PersistentGrants } from './persistent-grants.js';
import { RingServer } from './ring-server.js';
import { readVbdConfig, type VbdConfig } from './vbd-config.js';
import { newVbdStats, type VbdStats } from './vbd-stats.js';

/** Granularity offered for discard (discard-granularity): a page, what blkfront rounds to anyway. */
const DISCARD_GRANULARITY = 4096;

export interface BlkbackContext {
  domid: DomId;
  hv: HypervisorConnection;
  xs: XenstoreClient;
  mapper: GrantMapper;
  evtchn: Evtchn;
  batch: CopyBatch;
  log: Logger;
  openImage(path: string, opts: OpenImageOptions): Promise<BlockImage>;
  /**
   * Map the grants of front ends that offer feature-persistent and keep them
   * (persistent-grants.ts).  Off by default: measured no faster than grant
   * copy in xenbox (docs/blkback.md); feature-persistent is still offered.
   */
  persistentGrants: boolean;
}

interface Connection {
  handle: number;
  page: MirrorPage;
  port: number;
  server: RingServer;
}

export class Vbd {
  readonly stats: VbdStats = newVbdStats();
  readonly log: Logger;
  /** The state we last wrote (the toolstack created the directory with Initialising). */
  private state: XenbusStateValue = XenbusState.Initialising;
  private probed = false;
  /** The front end's state at the last step (a reconnect is a move into Initialising). */
  private lastFront: XenbusStateValue | null = null;
  private config: VbdConfig | null = null;
  private image: BlockImage | null = null;
  private conn: Connection | null = null;
  private frontDir: string;
  private readonly watches: XsWatch[] = [];
  private chain: Promise<void> = Promise.resolve();
  private removed = false;

  constructor(
    private readonly ctx: BlkbackContext,
    readonly dev: BackendDevice,
  ) {
    this.log = ctx.log.child({ vbd: `${dev.frontend}/${dev.devid}` });
    this.frontDir = frontendPath(dev.frontend, 'vbd', dev.devid);
  }

  get path(): string {
    return this.dev.path;
  }

  /** "vbd/<frontend>/<devid>", as the supervisor names devices. */
  get name(): string {
    return deviceName('vbd', this.dev.frontend, this.dev.devid);
  }

  get connected(): boolean {
    return this.conn !== null;
  }

  /** The ring's indices and activity (null when not connected), for the stats log line. */
  ringSnapshot(): Record<string, unknown> | null {
    return this.conn?.server.snapshot() ?? null;
  }

  async start(): Promise<void> {
    this.frontDir = (await this.ctx.xs.tryRead(`${this.path}/frontend`)) ?? this.frontDir;
    for (const p of [`${this.frontDir}/state`, `${this.path}/state`, `${this.path}/online`]) {
      const w = await this.ctx.xs.watch(p);
      this.watches.push(w);
      void (async () => {
        for await (const _ of w) this.schedule();
      })();
    }
    this.schedule();
  }

  /** The directory went away: let go of everything. */
  async remove(): Promise<void> {
    this.removed = true;
    for (const w of this.watches) await w.unwatch().catch(() => undefined);
    await this.chain;
    await this.disconnect('device removed');
    await this.image?.close().catch((e: unknown) => this.log.warn({ err: e }, 'closing the image failed'));
    this.image = null;
    this.log.info({ stats: this.stats }, 'vbd removed');
  }

  private schedule(): void {
    this.chain = this.chain.then(() => this.step()).catch((e: unknown) => this.log.error({ err: e }, 'vbd step failed'));
  }

  private async step(): Promise<void> {
    if (this.removed) return;
    const xs = this.ctx.xs;
    const online = await xs.tryRead(`${this.path}/online`);
    const written = await readXenbusState(xs, this.path);
    if (written === XenbusState.Unknown) return; // the directory is going; the watcher will remove us
    if (online === '0' || (written === XenbusState.Closing && this.state !== XenbusState.Closing)) {
      // libxl's removal: online=0 and state=Closing; answer with Closed once the ring is let go.
      await this.disconnect('the toolstack closes the device');
      await this.switchState(XenbusState.Closed);
      return;
    }
    const front = await readXenbusState(xs, this.frontDir);
    const frontMoved = front !== this.lastFront;
    this.lastFront = front;
    if (!this.probed) await this.probe();
    switch (front) {
      case XenbusState.Initialising:
      case XenbusState.InitWait:
        // A front end starting over (after Closed, or restarted under us): offer the device again.
        if (frontMoved && (this.state === XenbusState.Closed || this.state === XenbusState.Closing || this.state === XenbusState.Connected)) {
          this.log.info({ front: xenbusStateName(front) }, 'prepare for reconnect');
          await this.disconnect('front end reconnects');
          await this.probe();
        }
        break;
      case XenbusState.Initialised:
      case XenbusState.Connected:
        if (this.state === XenbusState.InitWait) await this.connect();
        break;
      case XenbusState.Closing:
        if (this.state !== XenbusState.Closed) await this.switchState(XenbusState.Closing);
        break;
      default: // Closed, or the front end's directory is gone
        // A front end still Closed from an earlier backend (one that died, or re-pointed us in)
        // is no reason to close a device it has not used yet: wait for its Initialising.
        if (front === XenbusState.Closed && this.state === XenbusState.InitWait && !this.conn) break;
        await this.disconnect(`front end ${xenbusStateName(front)}`);
        if (this.state !== XenbusState.Closed) await this.switchState(XenbusState.Closed);
    }
  }

  /** xen_blkbk_probe + backend_changed: open the image, publish what we offer, InitWait. */
  private async probe(): Promise<void> {
    this.probed = true;
    try {
      const config = await readVbdConfig(this.ctx.xs, this.path);
      if (!this.image || this.config?.path !== config.path || this.config.readOnly !== config.readOnly) {
        await this.image?.close().catch(() => undefined);
        this.image = null;
        this.config = config;
        if (config.path !== null) this.image = await this.ctx.openImage(config.path, { format: config.format, readOnly: config.readOnly });
      }
      this.config = config;
      const keys: Record<string, string | number> = {
        'feature-flush-cache': config.readOnly ? 0 : 1,
        'feature-discard': config.discard ? 1 : 0,
        'feature-persistent': 1,
        'feature-max-indirect-segments': BLKIF_MAX_INDIRECT_SEGMENTS,
        'max-ring-page-order': 0,
      };
      if (config.discard) Object.assign(keys, { 'discard-granularity': DISCARD_GRANULARITY, 'discard-alignment': 0, 'discard-secure': 0 });
      await writeXenbusKeys(this.ctx.xs, this.path, keys);
      this.log.info({ path: config.path, format: this.image?.format ?? null, readOnly: config.readOnly, cdrom: config.cdrom, sectors: this.sectors() }, 'vbd opened');
      await this.switchState(XenbusState.InitWait);
    } catch (e) {
      await this.fatal(e, 'opening the vbd');
    }
  }

  private sectors(): number {
    return this.image ? Math.floor(this.image.size / BLKIF_SECTOR_SIZE) : 0;
  }

  /** connect_ring + connect: map the front's ring, bind its channel, publish sizes, Connected. */
  private async connect(): Promise<void> {
    const { xs, mapper, evtchn } = this.ctx;
    const fe = this.dev.frontend;
    let handle: number | null = null;
    let page: MirrorPage | null = null;
    let port: number | null = null;
    try {
      const protocol = await xs.tryRead(`${this.frontDir}/protocol`);
      if (protocol !== undefined && protocol !== '' && !(BLKIF_PROTOCOLS_64BIT as readonly string[]).includes(protocol)) {
        throw new XenError('ENOSYS', `unsupported protocol ${protocol} (served: ${BLKIF_PROTOCOLS_64BIT.join(', ')} and native)`);
      }
      if ((await xs.tryRead(`${this.frontDir}/ring-page-order`)) !== undefined && (await readXenbusUint(xs, this.frontDir, 'ring-page-order')) !== 0) {
        throw new XenError('EINVAL', 'ring-page-order above max-ring-page-order (0)');
      }
      const ref = await readXenbusUint(xs, this.frontDir, 'ring-ref');
      const remotePort = await readXenbusUint(xs, this.frontDir, 'event-channel');
      const persistent = (await readXenbusUint(xs, this.frontDir, 'feature-persistent', 0)) === 1;
      const mapped = await mapper.mapOne(fe, ref);
      handle = mapped.handle;
      page = mapped.page;
      port = await evtchn.bindInterdomain(fe, remotePort);
      const config = this.config!;
      const server = new RingServer({
        hv: this.ctx.hv,
        evtchn,
        batch: this.ctx.batch,
        frontend: fe,
        page,
        port,
        image: this.image,
        limits: { sectors: this.sectors(), readOnly: config.readOnly, discard: config.discard, maxIndirectSegments: BLKIF_MAX_INDIRECT_SEGMENTS },
        stats: this.stats,
        log: this.log,
        persistent: persistent && this.ctx.persistentGrants ? new PersistentGrants(this.ctx.hv, mapper, fe) : null,
        onBroken: (e) => this.ringBroken(server, e),
        onFirstResponse: (requestsBefore) => notifySupervisor({ type: 'device-first-io', device: this.name, at: Date.now(), requestsBefore }),
      });
      this.conn = { handle, page, port, server };
      const info = (config.readOnly ? VDISK_READONLY : 0) | (config.cdrom ? VDISK_CDROM : 0);
      await writeXenbusKeys(xs, this.path, { sectors: this.sectors(), info, 'sector-size': BLKIF_SECTOR_SIZE, 'physical-sector-size': BLKIF_SECTOR_SIZE });
      await this.switchState(XenbusState.Connected);
      server.start();
      notifySupervisor({ type: 'device-connected', device: this.name, at: Date.now() });
      this.log.info({ ringRef: ref, port, remotePort, frontPersistent: persistent, mapsGrants: persistent && this.ctx.persistentGrants, sectors: this.sectors() }, 'connected');
    } catch (e) {
      if (!this.conn) {
        if (port !== null) await evtchn.close(port).catch(() => undefined);
        if (handle !== null) await mapper.unmap([{ handle, page }]).catch(() => undefined);
      }
      await this.fatal(e, 'connecting the ring');
    }
  }

  private ringBroken(server: RingServer, e: Error): void {
    if (this.conn?.server !== server) return;
    const gone = e instanceof XenError && (e.errno === 'EFAULT' || e.errno === 'ENOTCONN');
    this.log.error({ err: e.message, stats: this.stats }, gone ? 'front end went away under the ring' : 'ring broken: halting it');
    this.chain = this.chain.then(async () => {
      if (this.conn?.server !== server) return;
      if (gone) {
        await this.disconnect('front end gone');
        await this.switchState(XenbusState.Closed);
      } else {
        await this.fatal(e, 'serving the ring');
      }
    });
  }

  /** xen_blkif_disconnect: stop serving, wait for what is in flight, unbind, unmap. */
  private async disconnect(why: string): Promise<void> {
    const c = this.conn;
    if (!c) return;
    this.conn = null;
    await c.server.stop();
    await c.server.releaseGrants();
    await this.ctx.evtchn.close(c.port).catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'closing the event channel failed'));
    await this.ctx.mapper.unmap([{ handle: c.handle, page: c.page }]).catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'unmapping the ring failed'));
    this.log.info({ why, stats: this.stats }, 'disconnected');
  }

  /** xenbus_dev_fatal: say what went wrong under error/<our backend path>, and go Closing. */
  private async fatal(e: unknown, what: string): Promise<void> {
    const err = e instanceof XenError ? e : new XenError('EIO', (e as Error).message ?? String(e));
    this.log.error({ err: err.message, errno: err.errno }, `${what} failed`);
    const rel = this.path.replace(`/local/domain/${this.ctx.domid}/`, '');
    await this.ctx.xs
      .write(`/local/domain/${this.ctx.domid}/error/${rel}/error`, `${XEN_ERRNO[err.errno] ?? 5} ${what}: ${err.message}`)
      .catch((x: unknown) => this.log.warn({ err: (x as Error).message }, 'could not write the error node'));
    await this.switchState(XenbusState.Closing);
  }

  private async switchState(s: XenbusStateValue): Promise<void> {
    if (this.removed || this.state === s) return;
    this.state = s;
    await this.ctx.xs.write(`${this.path}/state`, String(s));
  }
}
