/**
 * The classic libpcap capture file (pcap-savefile(5), tcpdump.org
 * "LINKTYPE" list): a 24-byte global header, then per packet a 16-byte
 * record header and the bytes.  Written in host order (little-endian here);
 * readers tell the byte order from the magic.
 */
export const PCAP_MAGIC = 0xa1b2c3d4;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
/** LINKTYPE_ETHERNET: IEEE 802.3 frames, no preamble or FCS. */
export const LINKTYPE_ETHERNET = 1;
/** Largest packet a capture keeps whole (tcpdump's default snaplen). */
export const PCAP_SNAPLEN = 262144;
export const PCAP_GLOBAL_HEADER_SIZE = 24;
export const PCAP_RECORD_HEADER_SIZE = 16;

/** magic u32, version_major u16, version_minor u16, thiszone i32, sigfigs u32, snaplen u32, network u32. */
export function encodePcapGlobalHeader(linktype = LINKTYPE_ETHERNET, snaplen = PCAP_SNAPLEN): Uint8Array {
  const b = new Uint8Array(PCAP_GLOBAL_HEADER_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, PCAP_MAGIC, true);
  v.setUint16(4, PCAP_VERSION_MAJOR, true);
  v.setUint16(6, PCAP_VERSION_MINOR, true);
  v.setInt32(8, 0, true);
  v.setUint32(12, 0, true);
  v.setUint32(16, snaplen, true);
  v.setUint32(20, linktype, true);
  return b;
}

/** ts_sec u32, ts_usec u32, incl_len u32, orig_len u32. */
export function encodePcapRecordHeader(tsMicros: number, inclLen: number, origLen: number): Uint8Array {
  const b = new Uint8Array(PCAP_RECORD_HEADER_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, Math.floor(tsMicros / 1e6) >>> 0, true);
  v.setUint32(4, Math.floor(tsMicros % 1e6), true);
  v.setUint32(8, inclLen, true);
  v.setUint32(12, origLen, true);
  return b;
}
