/**
 * A domain's event channels (xen/common/event_channel.c) with the 2-level
 * pending/mask bitmaps of event_2l.c.
 *
 * Ports are allocated in buckets, as Xen's are: port_is_valid() is true for
 * every port of an allocated bucket, bound or free, which is why a send on a
 * closed port is EINVAL (its state is ECS_FREE) rather than ENOENT.
 *
 * The bitmaps and per-vCPU upcall fields are Xen's shared_info bytes
 * (common/shared-info.ts): a process domain's stay in the hypervisor; a
 * guest's move into its own RAM when it places shared_info, so it reads and
 * clears them itself while the hypervisor sets them with Atomics.
 */
import {
  EVTCHN_2L_NR_CHANNELS,
  EVTCHN_MAX_DEFAULT,
  NR_VIRQS,
  VCPU_INFO,
  XEN_LEGACY_MAX_VCPUS,
  XenError,
  type DomId,
  type EvtchnPort,
} from '@xenbox/abi';
import { SharedInfoPage, privateVcpuInfo, type VcpuInfoView } from './shared-info.js';

export type ChannelState = 'free' | 'reserved' | 'unbound' | 'interdomain' | 'virq' | 'ipi';

export interface Channel {
  state: ChannelState;
  /** notify_vcpu_id */
  vcpu: number;
  /** unbound: the domain allowed to bind; interdomain: the remote domain. */
  remoteDom: DomId;
  remotePort: EvtchnPort;
  virq: number;
}

/** EVTCHNS_PER_BUCKET: ports become valid 64 at a time. */
export const EVTCHNS_PER_BUCKET = 64;
const BITS_PER_WORD = 64;

function freeChannel(): Channel {
  return { state: 'free', vcpu: 0, remoteDom: 0, remotePort: 0, virq: -1 };
}

/**
 * Bit helpers over the u32 halves of the 2-level words, atomic because a
 * guest's vCPU changes the same words from another thread
 * (guest_test_and_set_bit() and friends in event_2l.c).
 */
function testBit(a: Uint32Array, n: number): boolean {
  return (Atomics.load(a, n >>> 5) & (1 << (n & 31))) !== 0;
}
function setBit(a: Uint32Array, n: number): boolean {
  const bit = 1 << (n & 31);
  return (Atomics.or(a, n >>> 5, bit) & bit) !== 0;
}
function clearBit(a: Uint32Array, n: number): boolean {
  const bit = 1 << (n & 31);
  return (Atomics.and(a, n >>> 5, ~bit) & bit) !== 0;
}

/**
 * Per-vCPU upcall state of the 2-level ABI: the vcpu_info fields, read and
 * written in place in the domain's current shared_info page.
 */
export class VcpuEventState {
  constructor(private readonly info: () => VcpuInfoView) {}

  /** evtchn_upcall_pending */
  get upcallPending(): boolean {
    return Atomics.load(this.info().bytes, VCPU_INFO.evtchn_upcall_pending) !== 0;
  }
  set upcallPending(v: boolean) {
    Atomics.store(this.info().bytes, VCPU_INFO.evtchn_upcall_pending, v ? 1 : 0);
  }

  /** Set evtchn_upcall_pending; whether it was clear (vcpu_mark_events_pending's test_and_set_bit). */
  raiseUpcall(): boolean {
    return Atomics.exchange(this.info().bytes, VCPU_INFO.evtchn_upcall_pending, 1) === 0;
  }

  /** evtchn_upcall_mask (x86's XEN_HAVE_PV_UPCALL_MASK byte). */
  get upcallMask(): boolean {
    return Atomics.load(this.info().bytes, VCPU_INFO.evtchn_upcall_mask) !== 0;
  }
  set upcallMask(v: boolean) {
    Atomics.store(this.info().bytes, VCPU_INFO.evtchn_upcall_mask, v ? 1 : 0);
  }

  /** evtchn_pending_sel: one bit per 64-port word (two u32 halves; use the bit helpers). */
  get pendingSel(): Uint32Array {
    return this.info().pendingSel;
  }

  clearPendingSel(): void {
    Atomics.store(this.pendingSel, 0, 0);
    Atomics.store(this.pendingSel, 1, 0);
  }
}

export class EventChannels {
  private readonly channels: Channel[] = [];
  /** The shared_info page the bitmaps live in: the hypervisor's own until a guest places it. */
  private page = SharedInfoPage.own();
  /** vcpu_info of vCPUs past XEN_LEGACY_MAX_VCPUS (they cannot be in shared_info). */
  private readonly extraVcpuInfo: VcpuInfoView[] = [];
  readonly vcpus: VcpuEventState[] = [];
  /** virq_to_evtchn, per vCPU. */
  private readonly virqs = new Map<number, EvtchnPort>();

  constructor(
    public maxPort = EVTCHN_MAX_DEFAULT,
    nrVcpus = 1,
  ) {
    this.ensureVcpus(nrVcpus);
    this.growBucket();
    this.channels[0]!.state = 'reserved'; // port 0 is never handed out
  }

  /** shared_info evtchn_pending (u32 halves of the 64-bit words). */
  get pending(): Uint32Array {
    return this.page.pending;
  }

  /** shared_info evtchn_mask. */
  get mask(): Uint32Array {
    return this.page.mask;
  }

  /** The current shared_info page. */
  get sharedInfo(): SharedInfoPage {
    return this.page;
  }

  /**
   * XENMAPSPACE_shared_info: from now on the bitmaps and vcpu_info live in the
   * guest's RAM at `byteOffset` (gfn `gfn`), carrying over the current state.
   */
  placeSharedInfo(ram: SharedArrayBuffer, byteOffset: number, gfn: number): void {
    this.page = SharedInfoPage.placeIn(ram, byteOffset, gfn, this.page);
  }

  ensureVcpus(n: number): void {
    while (this.vcpus.length < n) {
      const v = this.vcpus.length;
      if (v >= XEN_LEGACY_MAX_VCPUS) this.extraVcpuInfo[v] = privateVcpuInfo();
      this.vcpus.push(new VcpuEventState(() => this.extraVcpuInfo[v] ?? this.page.vcpuInfo(v)));
    }
  }

  /** port_is_valid(): inside the limit and an allocated bucket. */
  isValid(port: number): boolean {
    return Number.isInteger(port) && port >= 0 && port <= this.maxPort && port < this.channels.length;
  }

  channel(port: EvtchnPort): Channel {
    return this.channels[port]!;
  }

  /** The channel of a valid port, or EINVAL as Xen's port_is_valid() check gives. */
  require(port: number, op: string): Channel {
    if (!this.isValid(port)) throw new XenError('EINVAL', `${op}: port ${port} is not a valid port`);
    return this.channels[port]!;
  }

  /** get_free_port(): the lowest free port, growing by a bucket; ENOSPC at the limit. */
  allocPort(): EvtchnPort {
    for (let port = 1; port <= this.maxPort; port++) {
      if (port >= this.channels.length) this.growBucket();
      if (this.channels[port]!.state === 'free') return port;
    }
    throw new XenError('ENOSPC', `no free event channel ports (max_event_channels ${this.maxPort})`);
  }

  /** Ports that are not free, in order. */
  boundPorts(): EvtchnPort[] {
    const out: EvtchnPort[] = [];
    this.channels.forEach((c, p) => {
      if (c.state !== 'free' && c.state !== 'reserved') out.push(p);
    });
    return out;
  }

  get portsInUse(): number {
    return this.boundPorts().length;
  }

  virqPort(virq: number, vcpu: number): EvtchnPort | undefined {
    return this.virqs.get(vcpu * NR_VIRQS + virq);
  }

  setVirqPort(virq: number, vcpu: number, port: EvtchnPort | undefined): void {
    if (port === undefined) this.virqs.delete(vcpu * NR_VIRQS + virq);
    else this.virqs.set(vcpu * NR_VIRQS + virq, port);
  }

  /** free_evtchn(): back to ECS_FREE with its pending bit cleared. */
  free(port: EvtchnPort): void {
    this.channels[port] = freeChannel();
    clearBit(this.pending, port);
  }

  /**
   * evtchn_2l_set_pending(): set the pending bit; if it was clear and the port
   * is unmasked and its selector bit newly set, the vCPU needs an upcall.
   * Returns whether to kick the vCPU.
   */
  setPending(port: EvtchnPort): boolean {
    if (setBit(this.pending, port)) return false;
    if (testBit(this.mask, port)) return false;
    return this.markSelector(port);
  }

  /** evtchn_2l_unmask(): clear the mask; a pending port raises an upcall now. */
  unmask(port: EvtchnPort): boolean {
    if (!clearBit(this.mask, port)) return false;
    if (!testBit(this.pending, port)) return false;
    return this.markSelector(port);
  }

  setMask(port: EvtchnPort): void {
    setBit(this.mask, port);
  }

  isPending(port: EvtchnPort): boolean {
    return testBit(this.pending, port);
  }

  isMasked(port: EvtchnPort): boolean {
    return testBit(this.mask, port);
  }

  /**
   * What a process domain's event "handler" does on an upcall, like the
   * guest's evtchn_do_upcall loop: clear upcall_pending and the selector, then
   * take every pending unmasked port, clearing its pending bit.  A process
   * has one handler for all its vCPUs, so every vCPU's state is cleared.
   */
  takePending(_vcpu = 0): EvtchnPort[] {
    for (const v of this.vcpus) {
      v.upcallPending = false;
      v.clearPendingSel();
    }
    const pending = this.pending;
    const mask = this.mask;
    const out: EvtchnPort[] = [];
    for (let w = 0; w < pending.length; w++) {
      let bits = Atomics.load(pending, w) & ~Atomics.load(mask, w);
      if (bits === 0) continue;
      Atomics.and(pending, w, ~bits);
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        out.push(w * 32 + b);
        bits &= bits - 1;
      }
    }
    return out.sort((a, b) => a - b);
  }

  /** Ports pending and unmasked right now (without taking them). */
  hasDeliverable(): boolean {
    const pending = this.pending;
    const mask = this.mask;
    for (let w = 0; w < pending.length; w++) if ((Atomics.load(pending, w) & ~Atomics.load(mask, w)) !== 0) return true;
    return false;
  }

  private markSelector(port: EvtchnPort): boolean {
    const ch = this.channels[port];
    const v = this.vcpus[ch?.vcpu ?? 0] ?? this.vcpus[0]!;
    if (setBit(v.pendingSel, Math.floor(port / BITS_PER_WORD))) return false;
    // vcpu_mark_events_pending(): only a newly raised upcall kicks the vCPU.
    if (!v.raiseUpcall()) return false;
    return !v.upcallMask;
  }

  private growBucket(): void {
    for (let i = 0; i < EVTCHNS_PER_BUCKET && this.channels.length < EVTCHN_2L_NR_CHANNELS; i++) this.channels.push(freeChannel());
  }
}
