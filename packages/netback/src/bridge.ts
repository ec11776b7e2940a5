/**
 * A software Ethernet bridge (what `brctl addbr xenbr0` gives dom0 in Xen):
 * every vif the vif-bridge script would attach to it is a port.  It learns
 * source addresses, sends a known unicast destination to its one port,
 * floods broadcast, multicast and unknown unicast to every other port, and
 * never sends a frame back where it came from (net/bridge br_forward.c,
 * br_input.c).  An optional capture sees every frame that enters.
 */
import { isMulticastMac } from '@xenbox/abi';
import { Fdb, DEFAULT_AGEING_MS } from './fdb.js';
import { macKey, type BridgePort, type Frame } from './frame.js';

export interface FrameTap {
  capture(frame: Uint8Array): void;
}

export class Bridge {
  private readonly ports = new Set<BridgePort>();
  readonly fdb: Fdb;
  /** Frames a port sent to itself (destination learned on the source port): filtered, as br_forward does. */
  filtered = 0;
  private readonly ager: NodeJS.Timeout;

  constructor(
    readonly name: string,
    readonly tap: FrameTap | null = null,
    ageingMs = DEFAULT_AGEING_MS,
  ) {
    this.fdb = new Fdb(ageingMs);
    this.ager = setInterval(() => this.fdb.age(), Math.min(ageingMs, 60_000));
    this.ager.unref();
  }

  addPort(port: BridgePort): void {
    this.ports.add(port);
  }

  removePort(port: BridgePort): void {
    this.ports.delete(port);
    this.fdb.forgetPort(port);
  }

  get portCount(): number {
    return this.ports.size;
  }

  /** A frame arrives from `from` (a guest's transmit). Frames shorter than a header were refused before. */
  input(from: BridgePort, frame: Frame): void {
    const d = frame.data;
    this.tap?.capture(d);
    if (!isMulticastMac(d, 6)) this.fdb.learn(macKey(d, 6), from);
    if (!isMulticastMac(d, 0)) {
      const to = this.fdb.lookup(macKey(d, 0));
      if (to === from) {
        this.filtered++;
        return;
      }
      if (to) {
        to.deliver(frame);
        return;
      }
    }
    for (const p of this.ports) if (p !== from) p.deliver(frame);
  }

  close(): void {
    clearInterval(this.ager);
    this.ports.clear();
  }
}
