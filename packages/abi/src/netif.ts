/**
 * The network interface (xen/include/public/io/netif.h): ring entries,
 * flags, response codes, and the xenstore keys netfront and netback trade.
 *
 * Two rings per vif, each one page (io/ring.h layout, see ring.ts):
 *   tx ring, guest -> backend: netif_tx_request (12 B) / netif_tx_response
 *     (4 B, in a 12 B slot) -> 256 slots;
 *   rx ring, backend -> guest: netif_rx_request (8 B) / netif_rx_response
 *     (8 B) -> 256 slots.
 * Extra-info slots (netif_extra_info, 8 B) overlay a tx request or an rx
 * response slot.  All fields are little-endian.
 */
import { XenError } from './errno.js';

/** Minimum number of slots per packet a backend must accept (netif.h). */
export const XEN_NETIF_NR_SLOTS_MIN = 18;
/** Largest packet a tx request can describe (the u16 `size` of the first slot). */
export const XEN_NETIF_MAX_TX_SIZE = 0xffff;
/** Ethernet header (Linux ETH_HLEN): netback refuses a shorter packet. */
export const ETH_HLEN = 14;
/** Default MTU when the `mtu` key is absent (libxl writes it only if != 1500). */
export const NETIF_DEFAULT_MTU = 1500;

// ---- ring entries ---------------------------------------------------------

/** union netif_tx_sring_entry { netif_tx_request_t req; netif_tx_response_t rsp; } */
export const NETIF_TX_ENTRY_SIZE = 12;
/** union netif_rx_sring_entry { netif_rx_request_t req; netif_rx_response_t rsp; } */
export const NETIF_RX_ENTRY_SIZE = 8;
export const NETIF_EXTRA_INFO_SIZE = 8;

// NETTXF_*: flags of a tx request.
/** Protocol checksum field is blank in the packet (checksum offload). */
export const NETTXF_csum_blank = 1 << 0;
/** Packet data has been validated against the protocol checksum. */
export const NETTXF_data_validated = 1 << 1;
/** Packet continues in the next request. */
export const NETTXF_more_data = 1 << 2;
/** Packet is followed by extra-info slot(s). */
export const NETTXF_extra_info = 1 << 3;

// NETRXF_*: flags of an rx response.
export const NETRXF_data_validated = 1 << 0;
export const NETRXF_csum_blank = 1 << 1;
export const NETRXF_more_data = 1 << 2;
export const NETRXF_extra_info = 1 << 3;
/** GSO prefix descriptor (old protocol; netback never sends it unless asked). */
export const NETRXF_gso_prefix = 1 << 4;

// XEN_NETIF_EXTRA_*
export const XEN_NETIF_EXTRA_TYPE_NONE = 0;
export const XEN_NETIF_EXTRA_TYPE_GSO = 1;
export const XEN_NETIF_EXTRA_TYPE_MCAST_ADD = 2;
export const XEN_NETIF_EXTRA_TYPE_MCAST_DEL = 3;
export const XEN_NETIF_EXTRA_TYPE_HASH = 4;
export const XEN_NETIF_EXTRA_TYPE_MAX = 5;
export const XEN_NETIF_EXTRA_FLAG_MORE = 1 << 0;

export const XEN_NETIF_GSO_TYPE_NONE = 0;
export const XEN_NETIF_GSO_TYPE_TCPV4 = 1;
export const XEN_NETIF_GSO_TYPE_TCPV6 = 2;

// NETIF_RSP_*: status of a response.  Positive rx statuses are byte counts.
export const NETIF_RSP_DROPPED = -2;
export const NETIF_RSP_ERROR = -1;
export const NETIF_RSP_OKAY = 0;
/** The response of an extra-info slot: there was no packet data in it. */
export const NETIF_RSP_NULL = 1;

export interface NetifTxRequest {
  gref: number;
  offset: number;
  flags: number;
  id: number;
  /** First slot: the whole packet's length; later slots: this slot's. */
  size: number;
}

export interface NetifTxResponse {
  id: number;
  status: number;
}

export interface NetifRxRequest {
  id: number;
  gref: number;
}

export interface NetifRxResponse {
  id: number;
  offset: number;
  flags: number;
  /** >= 0: bytes in this slot; < 0: NETIF_RSP_*. */
  status: number;
}

export interface NetifExtraInfo {
  type: number;
  flags: number;
  /** The 6 type-specific bytes (gso {size u16, type u8, pad, features u16} | mcast {addr[6]}). */
  data: Uint8Array;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function need(b: Uint8Array, n: number, what: string): DataView {
  if (b.length < n) throw new XenError('EINVAL', `${what}: ${b.length} bytes, need ${n}`);
  return view(b);
}

/** netif_tx_request: gref u32 @0, offset u16 @4, flags u16 @6, id u16 @8, size u16 @10. */
export function encodeTxRequest(r: NetifTxRequest): Uint8Array {
  const b = new Uint8Array(NETIF_TX_ENTRY_SIZE);
  const v = view(b);
  v.setUint32(0, r.gref >>> 0, true);
  v.setUint16(4, r.offset & 0xffff, true);
  v.setUint16(6, r.flags & 0xffff, true);
  v.setUint16(8, r.id & 0xffff, true);
  v.setUint16(10, r.size & 0xffff, true);
  return b;
}

export function decodeTxRequest(b: Uint8Array): NetifTxRequest {
  const v = need(b, NETIF_TX_ENTRY_SIZE, 'netif_tx_request');
  return { gref: v.getUint32(0, true), offset: v.getUint16(4, true), flags: v.getUint16(6, true), id: v.getUint16(8, true), size: v.getUint16(10, true) };
}

/** netif_tx_response: id u16 @0, status i16 @2. */
export function encodeTxResponse(r: NetifTxResponse): Uint8Array {
  const b = new Uint8Array(4);
  const v = view(b);
  v.setUint16(0, r.id & 0xffff, true);
  v.setInt16(2, r.status, true);
  return b;
}

export function decodeTxResponse(b: Uint8Array): NetifTxResponse {
  const v = need(b, 4, 'netif_tx_response');
  return { id: v.getUint16(0, true), status: v.getInt16(2, true) };
}

/** netif_rx_request: id u16 @0, pad u16 @2, gref u32 @4. */
export function encodeRxRequest(r: NetifRxRequest): Uint8Array {
  const b = new Uint8Array(NETIF_RX_ENTRY_SIZE);
  const v = view(b);
  v.setUint16(0, r.id & 0xffff, true);
  v.setUint32(4, r.gref >>> 0, true);
  return b;
}

export function decodeRxRequest(b: Uint8Array): NetifRxRequest {
  const v = need(b, NETIF_RX_ENTRY_SIZE, 'netif_rx_request');
  return { id: v.getUint16(0, true), gref: v.getUint32(4, true) };
}

/** netif_rx_response: id u16 @0, offset u16 @2, flags u16 @4, status i16 @6. */
export function encodeRxResponse(r: NetifRxResponse): Uint8Array {
  const b = new Uint8Array(NETIF_RX_ENTRY_SIZE);
  const v = view(b);
  v.setUint16(0, r.id & 0xffff, true);
  v.setUint16(2, r.offset & 0xffff, true);
  v.setUint16(4, r.flags & 0xffff, true);
  v.setInt16(6, r.status, true);
  return b;
}

export function decodeRxResponse(b: Uint8Array): NetifRxResponse {
  const v = need(b, NETIF_RX_ENTRY_SIZE, 'netif_rx_response');
  return { id: v.getUint16(0, true), offset: v.getUint16(2, true), flags: v.getUint16(4, true), status: v.getInt16(6, true) };
}

/** netif_extra_info: type u8 @0, flags u8 @1, u (6 bytes) @2. */
export function encodeExtraInfo(e: NetifExtraInfo): Uint8Array {
  const b = new Uint8Array(NETIF_EXTRA_INFO_SIZE);
  b[0] = e.type;
  b[1] = e.flags;
  b.set(e.data.subarray(0, 6), 2);
  return b;
}

export function decodeExtraInfo(b: Uint8Array): NetifExtraInfo {
  need(b, NETIF_EXTRA_INFO_SIZE, 'netif_extra_info');
  return { type: b[0]!, flags: b[1]!, data: b.slice(2, 8) };
}

// ---- xenstore -------------------------------------------------------------

/**
 * What a backend without GSO, multi-queue, split channels or a control ring
 * advertises (the keys Linux xen-netback/xenbus.c netback_probe writes),
 * each stated honestly.
 */
export const NETBACK_FEATURES = {
  'feature-sg': 1,
  'feature-gso-tcpv4': 0,
  'feature-gso-tcpv6': 0,
  'feature-ipv6-csum-offload': 0,
  'feature-rx-copy': 1,
  'feature-rx-flip': 0,
  'feature-multicast-control': 0,
  'feature-dynamic-multicast-control': 0,
  'feature-split-event-channels': 0,
  'multi-queue-max-queues': 1,
  'feature-ctrl-ring': 0,
} as const;

/** "00:16:3e:12:34:56" -> 6 bytes; null if not a MAC address. */
export function parseMac(text: string): Uint8Array | null {
  const m = /^([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})$/.exec(text.trim());
  if (!m) return null;
  return Uint8Array.from(m.slice(1, 7).map((h) => parseInt(h, 16)));
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, 6), (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Multicast/broadcast bit of a destination address (the I/G bit of the first octet). */
export function isMulticastMac(frame: Uint8Array, offset = 0): boolean {
  return (frame[offset]! & 1) === 1;
}

/**
 * The `rate` key as libxl writes it: "<bytes_per_interval>,<interval_usecs>"
 * (libxl_nic rate_bytes_per_interval / rate_interval_usecs; parsed by
 * Linux xen-netback/xenbus.c xen_net_read_rate).  null = malformed.
 */
export function parseNetifRate(text: string): { bytes: number; usecs: number } | null {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(text);
  if (!m) return null;
  const bytes = Number(m[1]);
  const usecs = Number(m[2]);
  if (!Number.isSafeInteger(bytes) || !Number.isSafeInteger(usecs) || bytes === 0 || usecs === 0) return null;
  return { bytes, usecs };
}

/**
 * Where netback publishes a vif's counters: <backend dir>/statistics/<name>.
 * Named from the guest's side, as netfront and `xl top` see them: rx_* is
 * what the guest was given (its rx ring), tx_* what it sent (its tx ring).
 * (Linux's /sys/class/net/vif<d>.<n>/statistics count from dom0's side, the
 * other way round.)  *_dropped: frames lost for want of room (a full rx
 * queue, an MTU or slot limit); *_errors: refused or failed requests.
 */
export const NETIF_STAT_NAMES = ['rx_packets', 'rx_bytes', 'rx_errors', 'rx_dropped', 'tx_packets', 'tx_bytes', 'tx_errors', 'tx_dropped'] as const;
export type NetifStatName = (typeof NETIF_STAT_NAMES)[number];
export const NETIF_STATS_DIR = 'statistics';
