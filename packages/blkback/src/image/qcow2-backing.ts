/**
 * qcow2 backing files (QEMU docs/interop/qcow2.txt): the name at
 * backing_file_offset/backing_file_size in the first cluster, its format in
 * the "Backing file format name" header extension (0xe2792aca).  A relative
 * name is relative to the directory of the image that names it, as in QEMU.
 */
import { dirname, resolve } from 'node:path';
import { XenError } from '@xenbox/abi';
import type { ImageFormat } from './block-image.js';
import { QCOW2_V2_HEADER_LENGTH, type Qcow2Header } from './qcow2-header.js';

/** Header extension types (qcow2.txt "Header extensions"). */
export const QCOW2_EXT_END = 0x00000000;
export const QCOW2_EXT_BACKING_FORMAT = 0xe2792aca;
/** "Must not be longer than 1023 bytes." */
export const QCOW2_MAX_BACKING_NAME = 1023;
/** A chain deeper than this is refused (it is most likely a loop). */
export const MAX_BACKING_DEPTH = 16;

export interface BackingSpec {
  /** The name as stored in the image. */
  name: string;
  /** The file it resolves to. */
  path: string;
  /** From the backing-format extension; absent = probe. */
  format: ImageFormat | undefined;
}

/**
 * The backing file an image names, if any.  `first` holds the image's first
 * cluster (or the whole file if shorter).
 */
export function parseBackingSpec(path: string, h: Qcow2Header, first: Buffer): BackingSpec | undefined {
  if (h.backingFileOffset === 0) return undefined;
  const end = Math.min(first.length, h.clusterSize);
  const off = h.backingFileOffset;
  const len = h.backingFileSize;
  if (len === 0 || len > QCOW2_MAX_BACKING_NAME || off + len > end) {
    throw new XenError('EINVAL', `${path}: bad qcow2 header: backing file name (${len} bytes at ${off}) empty, longer than ${QCOW2_MAX_BACKING_NAME} or outside the first cluster`);
  }
  const name = first.toString('utf8', off, off + len);
  if (name.includes('\0')) throw new XenError('EINVAL', `${path}: bad qcow2 header: backing file name contains a NUL`);
  return { name, path: resolve(dirname(path), name), format: backingFormat(path, h, first, end) };
}

/** Walk the header extensions for the backing format. */
function backingFormat(path: string, h: Qcow2Header, first: Buffer, end: number): ImageFormat | undefined {
  let at = h.version === 3 ? h.headerLength : QCOW2_V2_HEADER_LENGTH;
  let format: string | undefined;
  while (at + 8 <= end) {
    const type = first.readUInt32BE(at);
    const len = first.readUInt32BE(at + 4);
    if (type === QCOW2_EXT_END) break;
    if (at + 8 + len > end) {
      throw new XenError('EINVAL', `${path}: bad qcow2 header: extension 0x${type.toString(16)} (${len} bytes at ${at}) runs past the first cluster`);
    }
    if (type === QCOW2_EXT_BACKING_FORMAT) format = first.toString('latin1', at + 8, at + 8 + len);
    at += 8 + Math.ceil(len / 8) * 8;
  }
  if (format === undefined) return undefined;
  if (format !== 'raw' && format !== 'qcow2') {
    throw new XenError('EOPNOTSUPP', `${path}: qcow2 backing file format '${format}' not supported (raw or qcow2)`);
  }
  return format;
}
