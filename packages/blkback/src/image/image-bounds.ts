/**
 * The checks every image request passes before it touches the file: blkif
 * counts in 512-byte sectors (xen/include/public/io/blkif.h), so offsets and
 * lengths must be sector-aligned and inside the virtual size.
 */
import { XenError } from '@xenbox/abi';

export const SECTOR_SIZE = 512;

/** EINVAL unless [offset, offset+length) is sector-aligned and within `size`. */
export function checkRange(path: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new XenError('EINVAL', `${path}: bad range offset=${offset} length=${length}`);
  }
  if (offset % SECTOR_SIZE !== 0 || length % SECTOR_SIZE !== 0) {
    throw new XenError('EINVAL', `${path}: offset ${offset} / length ${length} not a multiple of ${SECTOR_SIZE}`);
  }
  if (offset + length > size) {
    throw new XenError('EINVAL', `${path}: range ${offset}+${length} past the end of the image (${size} bytes)`);
  }
}

/** EROFS on a write/discard to a read-only image. */
export function checkWritable(path: string, readOnly: boolean): void {
  if (readOnly) throw new XenError('EROFS', `${path}: image is read-only`);
}
