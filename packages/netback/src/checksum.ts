/**
 * Completing a checksum a sender left blank (NETTXF_csum_blank: the L4
 * checksum field holds only the pseudo-header sum, as with CHECKSUM_PARTIAL
 * in Linux).  Needed before such a frame goes to a frontend that wrote
 * feature-no-csum-offload=1; Linux does it with skb_checksum_help().
 * IPv4 TCP and UDP only (what xenbox advertises; ipv6 offload is not offered).
 */
const ETHERTYPE_IPV4 = 0x0800;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/** Ones'-complement sum of bytes [from, to) added to `sum` (RFC 1071). */
export function onesSum(b: Uint8Array, from: number, to: number, sum = 0): number {
  let i = from;
  for (; i + 1 < to; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < to) sum += b[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * A copy of `frame` with its TCP/UDP checksum filled in, or null when the
 * frame is not IPv4 TCP/UDP (or is cut short) and cannot be completed.
 */
export function completeChecksum(frame: Uint8Array): Uint8Array | null {
  if (frame.length < 14 + 20) return null;
  if (((frame[12]! << 8) | frame[13]!) !== ETHERTYPE_IPV4) return null;
  const ihl = (frame[14]! & 0x0f) * 4;
  const proto = frame[14 + 9]!;
  const l4 = 14 + ihl;
  const totalLen = (frame[16]! << 8) | frame[17]!;
  const end = Math.min(frame.length, 14 + totalLen);
  const field = proto === IPPROTO_TCP ? l4 + 16 : proto === IPPROTO_UDP ? l4 + 6 : -1;
  if (field < 0 || field + 2 > end) return null;
  const out = frame.slice();
  // The field already carries the pseudo-header sum: sum the segment over it.
  let c = ~onesSum(out, l4, end) & 0xffff;
  if (c === 0 && proto === IPPROTO_UDP) c = 0xffff;
  out[field] = c >> 8;
  out[field + 1] = c & 0xff;
  return out;
}
