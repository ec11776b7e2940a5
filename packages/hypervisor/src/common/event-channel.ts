/**
 * A domain's event channels (xen/common/event_channel.c) with the 2-level
 * pending/mask bitmaps of event_2l.c.
 *
 * Ports are allocated in buckets, as Xen's are: port_is_valid() is true for
 * every port of an allocated bucket, bound or free, which is why a send on a
 * closed port is EINVAL (its state is ECS_FREE) rather than ENOENT.
 */
import {
  EVTCHN_2L_NR_CHANNELS,
  EVTCHN_MAX_DEFAULT,
  NR_VIRQS,
  XenError,
  type DomId,
  type EvtchnPort,
} from '@xenbox/abi';

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

/** Bit helpers over Uint32Array bitmaps (2-level words are 64 bits; two u32 halves here). */
function testBit(a: Uint32Array, n: number): boolean {
  return (a[n >>> 5]! & (1 << (n & 31))) !== 0;
}
function setBit(a: Uint32Array, n: number): boolean {
  const was = testBit(a, n);
  a[n >>> 5]! |= 1 << (n & 31);
  return was;
}
function clearBit(a: Uint32Array, n: number): boolean {
  const was = testBit(a, n);
  a[n >>> 5]! &= ~(1 << (n & 31));
  return was;
}

/** Per-vCPU upcall state of the 2-level ABI (vcpu_info). */
export interface VcpuEventState {
  upcallPending: boolean;
  upcallMask: boolean;
  /** evtchn_pending_sel: one bit per 64-port word. */
  pendingSel: Uint32Array;
}

export class EventChannels {
  private readonly channels: Channel[] = [];
  /** shared_info evtchn_pending / evtchn_mask. */
  readonly pending = new Uint32Array(EVTCHN_2L_NR_CHANNELS / 32);
  readonly mask = new Uint32Array(EVTCHN_2L_NR_CHANNELS / 32);
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

  ensureVcpus(n: number): void {
    while (this.vcpus.length < n) this.vcpus.push({ upcallPending: false, upcallMask: false, pendingSel: new Uint32Array(2) });
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
   * take every pending unmasked port, clearing its pending bit.
   */
  takePending(vcpu = 0): EvtchnPort[] {
    const v = this.vcpus[vcpu]!;
    v.upcallPending = false;
    v.pendingSel.fill(0);
    const out: EvtchnPort[] = [];
    for (let w = 0; w < this.pending.length; w++) {
      let bits = this.pending[w]! & ~this.mask[w]!;
      if (bits === 0) continue;
      this.pending[w]! &= ~bits;
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
    for (let w = 0; w < this.pending.length; w++) if ((this.pending[w]! & ~this.mask[w]!) !== 0) return true;
    return false;
  }

  private markSelector(port: EvtchnPort): boolean {
    const ch = this.channels[port];
    const v = this.vcpus[ch?.vcpu ?? 0] ?? this.vcpus[0]!;
    if (setBit(v.pendingSel, Math.floor(port / BITS_PER_WORD))) return false;
    v.upcallPending = true;
    return !v.upcallMask;
  }

  private growBucket(): void {
    for (let i = 0; i < EVTCHNS_PER_BUCKET && this.channels.length < EVTCHN_2L_NR_CHANNELS; i++) this.channels.push(freeChannel());
  }
}
