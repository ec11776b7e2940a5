/**
 * The virtio network device (Virtio 1.2 §5.1; Linux
 * include/uapi/linux/virtio_net.h): its device ID, feature bits, config
 * space and the header in front of every packet.
 *
 * xenbox's virtio-net (packages/stubdom/src/devices/virtio-net.ts) offers
 * VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC and VIRTIO_NET_F_STATUS, nothing
 * else: no checksum or segmentation offload, no mergeable rx buffers, no
 * control queue, one queue pair.  So every packet travels whole behind a
 * header that says nothing (flags 0, GSO_NONE), which is what U-Boot's
 * driver (drivers/virtio/virtio_net.c, negotiating only F_MAC) sends.
 */

/* The device ID, VIRTIO_ID_NET = 1, is with the other IDs in virtio.ts. */

// Feature bits (Virtio 1.2 §5.1.3), as bigint masks over the 64-bit feature word.
/** Device handles packets with partial checksum (not offered). */
export const VIRTIO_NET_F_CSUM = 1n << 0n;
/** Driver handles packets with partial checksum (not offered). */
export const VIRTIO_NET_F_GUEST_CSUM = 1n << 1n;
/** Device reports its maximum MTU in config (not offered). */
export const VIRTIO_NET_F_MTU = 1n << 3n;
/** Device has given MAC address (config `mac`). */
export const VIRTIO_NET_F_MAC = 1n << 5n;
/** Driver can merge receive buffers (not offered: one buffer per packet). */
export const VIRTIO_NET_F_MRG_RXBUF = 1n << 15n;
/** Config `status` is valid (link up/down). */
export const VIRTIO_NET_F_STATUS = 1n << 16n;
/** Control channel available (not offered). */
export const VIRTIO_NET_F_CTRL_VQ = 1n << 17n;

/** Config `status` bits (Virtio 1.2 §5.1.4). */
export const VIRTIO_NET_S_LINK_UP = 1;
export const VIRTIO_NET_S_ANNOUNCE = 2;

/**
 * struct virtio_net_config, the fields we offer: mac[6] at 0, le16 status
 * at 6 (max_virtqueue_pairs, mtu ... follow but belong to features we do
 * not offer, so they read 0).
 */
export const VIRTIO_NET_CONFIG = {
  MAC: 0,
  STATUS: 6,
  /** Bytes of config space the fields above take (reads beyond give 0). */
  SIZE: 8,
} as const;

/** Virtqueue indices (Virtio 1.2 §5.1.2): receiveq1 = 0, transmitq1 = 1. */
export const VIRTIO_NET_RX_QUEUE = 0;
export const VIRTIO_NET_TX_QUEUE = 1;

/**
 * struct virtio_net_hdr_v1 (Virtio 1.2 §5.1.6): u8 flags, u8 gso_type,
 * le16 hdr_len, gso_size, csum_start, csum_offset, num_buffers.  With
 * VIRTIO_F_VERSION_1 the header always has num_buffers, 12 bytes, whether
 * or not MRG_RXBUF is negotiated.
 */
export const VIRTIO_NET_HDR_SIZE = 12;
export const VIRTIO_NET_HDR = {
  FLAGS: 0,
  GSO_TYPE: 1,
  HDR_LEN: 2,
  GSO_SIZE: 4,
  CSUM_START: 6,
  CSUM_OFFSET: 8,
  NUM_BUFFERS: 10,
} as const;
/** flags: the driver left a checksum blank (only with VIRTIO_NET_F_CSUM). */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_GSO_NONE = 0;

/**
 * Largest frame the device passes either way: a 1500-byte MTU plus the
 * Ethernet header (Linux's ETH_FRAME_LEN).  Without VIRTIO_NET_F_MTU, GSO
 * or MRG_RXBUF a driver posts rx buffers of header + 1514 = 1526 bytes
 * (Virtio 1.2 §5.1.6.3.1; U-Boot's VIRTIO_NET_RX_BUF_SIZE), so nothing
 * longer could be delivered.
 */
export const VIRTIO_NET_MAX_FRAME = 1514;

/** The rx header of a packet we deliver: nothing offloaded, one buffer (§5.1.6.4: num_buffers = 1 without MRG_RXBUF). */
export function encodeVirtioNetRxHeader(): Uint8Array {
  const h = new Uint8Array(VIRTIO_NET_HDR_SIZE);
  h[VIRTIO_NET_HDR.FLAGS] = 0;
  h[VIRTIO_NET_HDR.GSO_TYPE] = VIRTIO_NET_HDR_GSO_NONE;
  h[VIRTIO_NET_HDR.NUM_BUFFERS] = 1;
  return h;
}
