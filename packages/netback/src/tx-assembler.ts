/**
 * Guest transmit: turning tx ring slots into packets, with the checks Linux
 * xen-netback/netback.c makes (xenvif_tx_build_gops, xenvif_count_requests,
 * xenvif_get_extras) before any data is touched.  Each slot is decoded from
 * the private copy the ring handed out, never from the shared page.
 *
 * Wire format (netif.h): first slot {size = whole packet, flags}, then
 * extra-info slots if NETTXF_extra_info (chained by XEN_NETIF_EXTRA_FLAG_MORE),
 * then one slot per further fragment while NETTXF_more_data.
 *
 * Where Linux calls a frontend fatal (slot crossing a page, impossible
 * chain lengths) and disables the vif, xenbox answers NETIF_RSP_ERROR for
 * every slot of the packet and goes on: the bad packet is dropped and
 * counted, the vif keeps working.  A chain longer than
 * XEN_NETIF_NR_SLOTS_MIN is answered slot by slot as it arrives until it ends.
 */
import {
  ETH_HLEN,
  NETTXF_extra_info,
  NETTXF_more_data,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_MAX,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  XEN_NETIF_EXTRA_TYPE_MCAST_DEL,
  XEN_NETIF_EXTRA_TYPE_NONE,
  XEN_NETIF_NR_SLOTS_MIN,
  XEN_PAGE_SIZE,
  decodeExtraInfo,
  decodeTxRequest,
  type NetifTxRequest,
} from '@xenbox/abi';

export interface TxSlot {
  req: NetifTxRequest;
  /** An extra-info slot: answered NETIF_RSP_NULL. */
  extra: boolean;
  /** Bytes of packet data this slot carries (first slot: total minus the fragments). */
  len: number;
}

/** One or more consumed slots and what to answer. */
export interface TxUnit {
  slots: TxSlot[];
  /** Why the unit is refused (every data slot gets NETIF_RSP_ERROR), or null. */
  error: string | null;
  /** Total packet length; 0 for a unit that carries no packet (multicast control, discarded tail). */
  size: number;
  flags: number;
}

type Discard = 'none' | 'extras' | 'data';

export class TxAssembler {
  private slots: TxSlot[] = [];
  private dataSlots = 0;
  private extrasPending = false;
  /** Inside a chain already refused: answer every slot until it ends. */
  private discard: Discard = 'none';
  /** After discarding extra slots, whether data slots follow. */
  private discardThenData = false;
  /** Packets refused. */
  refused = 0;

  /** A packet is half read (waiting for the rest of its chain). */
  get partial(): boolean {
    return this.slots.length > 0 || this.discard !== 'none';
  }

  /** Feed one slot (the 12 bytes copied out of the ring); a unit when one is complete. */
  push(raw: Uint8Array): TxUnit | null {
    const req = decodeTxRequest(raw);
    if (this.discard !== 'none') return this.discardSlot(raw, req);
    if (this.extrasPending) return this.pushExtra(raw, req);
    this.slots.push({ req, extra: false, len: req.size });
    this.dataSlots++;
    if (this.slots.length === 1 && req.flags & NETTXF_extra_info) {
      this.extrasPending = true;
      return null;
    }
    return this.afterData(req);
  }

  private afterData(req: NetifTxRequest): TxUnit | null {
    if (req.flags & NETTXF_more_data) {
      if (this.dataSlots >= XEN_NETIF_NR_SLOTS_MIN) {
        this.discard = 'data';
        return this.refuse(`packet uses more than ${XEN_NETIF_NR_SLOTS_MIN} slots (XEN_NETIF_NR_SLOTS_MIN)`);
      }
      return null;
    }
    return this.complete();
  }

  private pushExtra(raw: Uint8Array, req: NetifTxRequest): TxUnit | null {
    const extra = decodeExtraInfo(raw);
    this.slots.push({ req, extra: true, len: 0 });
    if (extra.type === XEN_NETIF_EXTRA_TYPE_NONE || extra.type >= XEN_NETIF_EXTRA_TYPE_MAX) return this.refuseInExtras(`invalid extra-info type ${extra.type}`, extra.flags);
    if (extra.type === XEN_NETIF_EXTRA_TYPE_GSO) return this.refuseInExtras('GSO extra info, but feature-gso-tcpv4/6 are not offered', extra.flags);
    if (this.slots.length > XEN_NETIF_EXTRA_TYPE_MAX) return this.refuseInExtras('too many extra-info slots', extra.flags);
    if (extra.flags & XEN_NETIF_EXTRA_FLAG_MORE) return null;
    this.extrasPending = false;
    const first = this.slots[0]!.req;
    const isMcast = extra.type === XEN_NETIF_EXTRA_TYPE_MCAST_ADD || extra.type === XEN_NETIF_EXTRA_TYPE_MCAST_DEL;
    // A multicast-control request is a dummy slot: answered, never a packet (xenvif_tx_build_gops).
    if (isMcast && !(first.flags & NETTXF_more_data)) return this.take(null, 0);
    return this.afterData(first);
  }

  /** A bad extra slot: refuse the packet so far and discard the rest of its chain. */
  private refuseInExtras(why: string, extraFlags: number): TxUnit {
    const dataFollows = (this.slots[0]!.req.flags & NETTXF_more_data) !== 0;
    if (extraFlags & XEN_NETIF_EXTRA_FLAG_MORE) {
      this.discard = 'extras';
      this.discardThenData = dataFollows;
    } else {
      this.discard = dataFollows ? 'data' : 'none';
    }
    return this.refuse(why);
  }

  private discardSlot(raw: Uint8Array, req: NetifTxRequest): TxUnit {
    const extra = this.discard === 'extras';
    if (extra) {
      if (!(decodeExtraInfo(raw).flags & XEN_NETIF_EXTRA_FLAG_MORE)) this.discard = this.discardThenData ? 'data' : 'none';
    } else if (!(req.flags & NETTXF_more_data)) {
      this.discard = 'none';
    }
    return { slots: [{ req, extra, len: 0 }], error: 'rest of a refused chain', size: 0, flags: 0 };
  }

  private refuse(why: string): TxUnit {
    this.refused++;
    return this.take(why, 0);
  }

  /** The chain ended: check it as a whole. */
  private complete(): TxUnit {
    const data = this.slots.filter((s) => !s.extra);
    const first = data[0]!;
    const total = first.req.size;
    let rest = 0;
    for (let i = 1; i < data.length; i++) rest += data[i]!.req.size;
    if (total < ETH_HLEN) return this.refuse(`packet of ${total} bytes is shorter than an Ethernet header (${ETH_HLEN})`);
    if (rest > total) return this.refuse(`fragments add up to ${rest} bytes, more than the packet's ${total}`);
    first.len = total - rest;
    for (const s of data) {
      if (s.req.offset + s.len > XEN_PAGE_SIZE) return this.refuse(`slot id ${s.req.id}: offset ${s.req.offset} + ${s.len} bytes crosses the page (${XEN_PAGE_SIZE})`);
    }
    return this.take(null, total);
  }

  private take(error: string | null, size: number): TxUnit {
    const unit = { slots: this.slots, error, size, flags: this.slots[0]?.req.flags ?? 0 };
    this.slots = [];
    this.dataSlots = 0;
    this.extrasPending = false;
    return unit;
  }
}
