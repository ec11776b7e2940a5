/**
 * For the netback tests: a stack with netback as a real process (its own
 * domain, started by the supervisor), and frontends that are process domains
 * created the way the toolstack creates domains, with vifs added the way xl
 * adds them (libxl's addDevice), each running libxen's Netfront.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDirLayout, type DomId } from '@xenbox/abi';
import { HypervisorConnection, Netfront, XenstoreClient } from '@xenbox/libxen';
import { addDevice } from '../packages/dom0/dist/libxl/device.js';
import { introduceDomain } from '../packages/dom0/dist/libxl/domain-xenstore.js';
import { TestStack } from './helpers/stack.js';

export interface GuestOpts {
  bridge?: string;
  mac?: string;
  rate?: string;
  mtu?: number;
  devid?: number;
  /** Extra backend keys (as a toolstack would write). */
  backendKeys?: Record<string, string>;
  /** Do not start a Netfront (the test drives the frontend itself). */
  noFrontend?: boolean;
}

export interface NetGuest {
  name: string;
  domid: DomId;
  hv: HypervisorConnection;
  xs: XenstoreClient;
  nf: Netfront;
  mac: Uint8Array;
  macText: string;
  devid: number;
}

let macSeq = 1;

export class NetHarness {
  readonly guests: NetGuest[] = [];
  private constructor(
    readonly stack: TestStack,
    readonly dom0: HypervisorConnection,
    readonly xs0: XenstoreClient,
  ) {}

  /** A stack whose only driver domain is one netback with `args`. */
  static async up(tag: string, netbackArgs: Record<string, unknown> = { bridges: ['xenbr0', 'xenbr1'] }, restart = 'always'): Promise<NetHarness> {
    const cfgDir = `/tmp/xb-${tag}-cfg-${process.pid}.json`; // read once by `xenbox up`
    writeFileSync(cfgDir, JSON.stringify({ services: [{ name: 'netback', kind: 'netback', args: netbackArgs, restart }], autostart: null }));
    const stack = await TestStack.up(tag, ['--config', cfgDir]).finally(() => rmSync(cfgDir, { force: true }));
    const layout = runDirLayout(stack.runDir);
    const dom0 = await HypervisorConnection.connect({ runDir: stack.runDir, domid: 0, token: readFileSync(layout.dom0Token, 'utf8').trim() });
    const xs0 = await XenstoreClient.connectRunDir(stack.runDir);
    return new NetHarness(stack, dom0, xs0);
  }

  get runDir(): string {
    return this.stack.runDir;
  }

  private knownNetback: DomId | null = null;

  /** netback's domain (asked of the supervisor once; `fresh` after a restart). */
  async netbackDomid(fresh = false): Promise<DomId> {
    if (this.knownNetback === null || fresh) {
      const s = await this.stack.waitFor('netback', (x) => x.state === 'ready' && x.domid !== null, 15_000);
      this.knownNetback = s.domid!;
    }
    return this.knownNetback;
  }

  /** A process domain with one vif on netback, connected. */
  async guest(name: string, o: GuestOpts = {}): Promise<NetGuest> {
    const d = await this.dom0.call('domctl.createdomain', { name, kind: 'service' });
    const secret = await introduceDomain(this.xs0, d.domid, name);
    const hv = await HypervisorConnection.connect({ runDir: this.runDir, domid: d.domid, token: d.token });
    const xs = await XenstoreClient.connectZmq({ runDir: this.runDir }, { domid: d.domid, secret });
    const devid = o.devid ?? 0;
    const n = macSeq++;
    const macText = o.mac ?? `00:16:3e:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
    await this.addVif(d.domid, devid, macText, o);
    const guest: NetGuest = { name, domid: d.domid, hv, xs, nf: null as unknown as Netfront, mac: new Uint8Array(), macText, devid };
    this.guests.push(guest);
    if (!o.noFrontend) {
      guest.nf = await Netfront.connect({ hv, xs, domid: d.domid, devid, timeoutMs: 15_000 });
      guest.mac = guest.nf.mac;
    }
    return guest;
  }

  /** xl network-attach's xenstore writes (libxl_device_nic_add). */
  async addVif(domid: DomId, devid: number, macText: string, o: GuestOpts = {}): Promise<void> {
    const backendKeys: Record<string, string> = { mac: macText, bridge: o.bridge ?? 'xenbr0', handle: String(devid), type: 'vif', script: 'vif-bridge', 'hotplug-status': '', ...o.backendKeys };
    if (o.rate) backendKeys.rate = o.rate;
    if (o.mtu) backendKeys.mtu = String(o.mtu);
    await addDevice(this.xs0, {
      kind: 'vif',
      backend: await this.netbackDomid(),
      frontend: domid,
      devid,
      backendKeys,
      frontendKeys: { handle: String(devid), mac: macText, mtu: String(o.mtu ?? 1500), trusted: '1' },
    });
  }

  /** The backend directory of a guest's vif. */
  async backendDir(g: NetGuest): Promise<string> {
    return (await this.xs0.read(`/local/domain/${g.domid}/device/vif/${g.devid}/backend`)).trim();
  }

  async destroy(): Promise<void> {
    for (const g of this.guests) {
      await g.nf?.close().catch(() => undefined);
      g.xs.close();
      await g.hv.close().catch(() => undefined);
    }
    this.xs0.close();
    await this.dom0.close().catch(() => undefined);
    await this.stack.destroy();
  }
}

// ---- frames -------------------------------------------------------------------

export const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** An Ethernet frame: dst, src, ethertype, payload padded to `len` with a counter pattern. */
export function ethFrame(dst: Uint8Array, src: Uint8Array, ethertype: number, len: number, seed = 0): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = ethertype >> 8;
  f[13] = ethertype & 0xff;
  for (let i = 14; i < len; i++) f[i] = (i * 7 + seed) & 0xff;
  return f;
}

/** An ARP request (who-has tpa tell spa) from `mac`, broadcast, padded to 60 bytes. */
export function arpRequest(mac: Uint8Array, spa: number[], tpa: number[]): Uint8Array {
  const f = new Uint8Array(60);
  f.set(BROADCAST, 0);
  f.set(mac, 6);
  f.set([0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01], 12);
  f.set(mac, 22);
  f.set(spa, 28);
  f.set(tpa, 38);
  return f;
}

/** The ARP reply to `req` from `mac` owning the asked address. */
export function arpReply(req: Uint8Array, mac: Uint8Array): Uint8Array {
  const f = new Uint8Array(60);
  f.set(req.subarray(6, 12), 0);
  f.set(mac, 6);
  f.set([0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02], 12);
  f.set(mac, 22);
  f.set(req.subarray(38, 42), 28);
  f.set(req.subarray(22, 28), 32);
  f.set(req.subarray(28, 32), 38);
  return f;
}

function csum(b: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An ICMP echo (type 8 request / 0 reply) in IPv4 in Ethernet, with correct IP and ICMP checksums. */
export function icmpEcho(o: { dst: Uint8Array; src: Uint8Array; sip: number[]; dip: number[]; type: 8 | 0; id: number; seq: number; payload?: Uint8Array }): Uint8Array {
  const payload = o.payload ?? new TextEncoder().encode('xenbox netback ping payload 0123456789');
  const icmpLen = 8 + payload.length;
  const ipLen = 20 + icmpLen;
  const f = new Uint8Array(Math.max(60, 14 + ipLen));
  f.set(o.dst, 0);
  f.set(o.src, 6);
  f[12] = 0x08;
  f[13] = 0x00;
  const ip = 14;
  f.set([0x45, 0, ipLen >> 8, ipLen & 0xff, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0], ip);
  f.set(o.sip, ip + 12);
  f.set(o.dip, ip + 16);
  const ipc = csum(f, ip, ip + 20);
  f[ip + 10] = ipc >> 8;
  f[ip + 11] = ipc & 0xff;
  const ic = ip + 20;
  f.set([o.type, 0, 0, 0, o.id >> 8, o.id & 0xff, o.seq >> 8, o.seq & 0xff], ic);
  f.set(payload, ic + 8);
  const icc = csum(f, ic, ic + icmpLen);
  f[ic + 2] = icc >> 8;
  f[ic + 3] = icc & 0xff;
  return f;
}

/** Collect frames a guest receives. */
export class Inbox {
  readonly frames: Uint8Array[] = [];
  private waiters: Array<() => void> = [];
  constructor(nf: Netfront) {
    nf.onFrame((f) => {
      this.frames.push(f);
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  /** Wait until `pred` holds for the frames so far, or fail after `ms`. */
  async until(pred: (frames: Uint8Array[]) => boolean, ms = 5000, what = 'frames'): Promise<Uint8Array[]> {
    const deadline = Date.now() + ms;
    while (!pred(this.frames)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what} (have ${this.frames.length})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.frames;
  }

  clear(): void {
    this.frames.length = 0;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function captureDir(h: NetHarness): string {
  return join(h.runDir, 'captures');
}
