/**
 * The xenstore wire ABI, declared once: xen/include/public/io/xs_wire.h,
 * tools/include/xenstore_lib.h and docs/misc/xenstore.txt.
 *
 * Everything here is byte-exact with Xen so that Debian's libxenstore
 * clients (xenstore-ls, xenstore-write, test-xenstore ...) can talk to
 * xenbox's xenstored over $RUN_DIR/xenstored/socket.
 */

/** enum xsd_sockmsg_type (io/xs_wire.h). */
export const XS = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  /** XS_RESTRICT: removed from Xen, the number stays reserved. */
  RESTRICT: 20,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  GET_FEATURE: 23,
  SET_FEATURE: 24,
  GET_QUOTA: 25,
  SET_QUOTA: 26,
  TYPE_COUNT: 27,
  INVALID: 0xffff,
} as const;

/** XS_DEBUG is the old name of XS_CONTROL. */
export const XS_DEBUG = XS.CONTROL;

export type XsTypeName = keyof typeof XS;

const XS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(XS).map(([k, v]) => [v, k]));

/** The name of a message type ("WRITE"), or "UNKNOWN(<n>)". */
export function xsTypeName(type: number): string {
  return XS_NAMES[type] ?? `UNKNOWN(${type})`;
}

/**
 * xenbox's own message type, outside Xen's range: a ZeroMQ peer proves which
 * domain it is (payload `domid\0secret\0`).  Never valid on the Unix socket
 * (where the connection is dom0 by construction) -- see docs/xenstored.md.
 */
export const XS_XENBOX_AUTH = 0x10000;

/** struct xsd_sockmsg: type, req_id, tx_id, len, all uint32 in host (little-endian) order. */
export interface XsHeader {
  type: number;
  reqId: number;
  txId: number;
  len: number;
}

export const XSD_SOCKMSG_SIZE = 16;
/** XENSTORE_PAYLOAD_MAX: most payload bytes in one message, either direction. */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** XENSTORE_ABS_PATH_MAX / XENSTORE_REL_PATH_MAX (io/xs_wire.h). */
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

/** Read a header at `off`; the caller makes sure 16 bytes are there. */
export function decodeXsHeader(buf: Uint8Array, off = 0): XsHeader {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, XSD_SOCKMSG_SIZE);
  return { type: dv.getUint32(0, true), reqId: dv.getUint32(4, true), txId: dv.getUint32(8, true), len: dv.getUint32(12, true) };
}

export function writeXsHeader(buf: Uint8Array, off: number, h: XsHeader): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, XSD_SOCKMSG_SIZE);
  dv.setUint32(0, h.type >>> 0, true);
  dv.setUint32(4, h.reqId >>> 0, true);
  dv.setUint32(8, h.txId >>> 0, true);
  dv.setUint32(12, h.len >>> 0, true);
}

/** One whole message: header followed by its payload. */
export function encodeXsMessage(type: number, reqId: number, txId: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(XSD_SOCKMSG_SIZE + payload.length);
  writeXsHeader(out, 0, { type, reqId, txId, len: payload.length });
  out.set(payload, XSD_SOCKMSG_SIZE);
  return out;
}

/** NUL-terminated strings as a payload: ["a","b"] -> "a\0b\0". */
export function xsStrings(...parts: string[]): Buffer {
  return Buffer.from(parts.map((p) => `${p}\0`).join(''), 'latin1');
}

/**
 * Split a payload into its NUL-terminated strings, as get_strings() in
 * tools/xenstored/core.c: bytes after the last NUL are not a string.
 */
export function splitXsStrings(payload: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] === 0) {
      out.push(Buffer.from(payload.buffer, payload.byteOffset + start, i - start).toString('latin1'));
      start = i + 1;
    }
  }
  return out;
}

/**
 * xsd_errors[] (io/xs_wire.h), in its order: an error reply's payload is the
 * name plus NUL.  New names are only ever appended.
 */
export const XSD_ERRORS = ['EINVAL', 'EACCES', 'EEXIST', 'EISDIR', 'ENOENT', 'ENOMEM', 'ENOSPC', 'EIO', 'ENOTEMPTY', 'ENOSYS', 'EROFS', 'EBUSY', 'EAGAIN', 'EISCONN', 'E2BIG', 'EPERM'] as const;
export type XsdErrorName = (typeof XSD_ERRORS)[number];

export function isXsdError(name: string): name is XsdErrorName {
  return (XSD_ERRORS as readonly string[]).includes(name);
}

/** Watch event vector indexes (XS_WATCH_PATH, XS_WATCH_TOKEN). */
export const XS_WATCH_PATH = 0;
export const XS_WATCH_TOKEN = 1;

/** Permission bits (tools/include/xenstore_lib.h). */
export const XS_PERM_NONE = 0x00;
export const XS_PERM_READ = 0x01;
export const XS_PERM_WRITE = 0x02;
/** Internal use only. */
export const XS_PERM_ENOENT_OK = 0x04;
export const XS_PERM_OWNER = 0x08;
export const XS_PERM_IGNORE = 0x10;

/** The special watch paths. */
export const XS_INTRODUCE_DOMAIN = '@introduceDomain';
export const XS_RELEASE_DOMAIN = '@releaseDomain';

/* ---- struct xenstore_domain_interface: the one-page ring (io/xs_wire.h) ---- */

export const XENSTORE_RING_SIZE = 1024;
export const MASK_XENSTORE_IDX = (idx: number) => idx & (XENSTORE_RING_SIZE - 1);
export const XENSTORE_RING = {
  REQ: 0,
  RSP: 1024,
  REQ_CONS: 2048,
  REQ_PROD: 2052,
  RSP_CONS: 2056,
  RSP_PROD: 2060,
  SERVER_FEATURES: 2064,
  CONNECTION: 2068,
  ERROR: 2072,
  EVTCHN_PORT: 2076,
  /** Bytes the structure occupies in its page. */
  SIZE: 2080,
} as const;

/** server_features bits. */
export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
export const XENSTORE_SERVER_FEATURE_ERROR = 2;
export const XENSTORE_SERVER_FEATURE_WATCHDEPTH = 4;
export const XENSTORE_SERVER_FEATURE_DOMID_ANY = 8;

/** connection field values. */
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;

/** error field values. */
export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
export const XENSTORE_ERROR_PROTO = 3;

/* ---- quotas (tools/xenstored/domain.c hard_quotas[] / soft_quotas[]) ---- */

export const XS_QUOTA_NAMES = ['nodes', 'watches', 'outstanding', 'memory', 'transactions', 'transaction-nodes', 'node-permissions', 'path-max', 'node-size'] as const;
export type XsQuotaName = (typeof XS_QUOTA_NAMES)[number];

export function isXsQuotaName(s: string): s is XsQuotaName {
  return (XS_QUOTA_NAMES as readonly string[]).includes(s);
}

/** C xenstored's default hard quotas; 0 disables a quota. */
export const XS_QUOTA_DEFAULTS: Readonly<Record<XsQuotaName, number>> = {
  nodes: 1000,
  watches: 128,
  outstanding: 20,
  memory: 2 * 1024 * 1024 + 512 * 1024,
  transactions: 10,
  'transaction-nodes': 1024,
  'node-permissions': 5,
  'path-max': XENSTORE_REL_PATH_MAX,
  'node-size': 2048,
};

/** The descriptions `xenstore-control quota` prints beside each value. */
export const XS_QUOTA_DESCRIPTIONS: Readonly<Record<XsQuotaName, string>> = {
  nodes: 'Nodes per domain',
  watches: 'Watches per domain',
  outstanding: 'Outstanding requests per domain',
  memory: 'Total Xenstore memory per domain (error level)',
  transactions: 'Active transactions per domain',
  'transaction-nodes': 'Max. number of accessed nodes per transaction',
  'node-permissions': 'Max. number of permissions per node',
  'path-max': 'Max. length of a node path',
  'node-size': 'Max. size of a node',
};

/** Soft quotas only warn (memory: 2 MiB). */
export const XS_SOFT_QUOTA_DEFAULTS: Readonly<Partial<Record<XsQuotaName, number>>> = {
  memory: 2 * 1024 * 1024,
};

/** sizeof(struct node_hdr) and sizeof(struct xs_permissions) in C xenstored: what node-size counts. */
export const XS_NODE_HDR_SIZE = 16;
export const XS_PERMISSION_SIZE = 8;
