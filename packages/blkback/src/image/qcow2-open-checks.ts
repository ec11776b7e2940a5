/**
 * Checks made when a qcow2 image is opened, after the header itself
 * (qcow2-header.ts): what blocks writing, and the L1 table's entries.
 */
import { XenError } from '@xenbox/abi';
import { INCOMPAT_CORRUPT, INCOMPAT_DIRTY, fixedMetadataAt, type Qcow2Header } from './qcow2-header.js';
import { l1EntryReservedBits, readL1Entry } from './qcow2-entry.js';

/** Header states that allow reading but not writing. */
export function checkWritableHeader(path: string, h: Qcow2Header): void {
  if (h.incompatibleFeatures & INCOMPAT_DIRTY) {
    throw new XenError('EOPNOTSUPP', `${path}: qcow2 image is dirty (lazy refcounts): repair it with 'qemu-img check -r all' or open it read-only`);
  }
  if (h.incompatibleFeatures & INCOMPAT_CORRUPT) {
    throw new XenError('EINVAL', `${path}: qcow2 image is marked corrupt: repair it with 'qemu-img check -r all' or open it read-only`);
  }
  if (h.nbSnapshots > 0) {
    throw new XenError('EOPNOTSUPP', `${path}: writing qcow2 images with internal snapshots (${h.nbSnapshots}) is not supported; open it read-only`);
  }
}

/** Every L2 table the L1 table names must be an aligned cluster inside the file. */
export function checkL1(path: string, h: Qcow2Header, l1: Buffer, fileSize: number, readOnly: boolean): void {
  for (let i = 0; i < h.l1Size; i++) {
    const { offset, copied } = readL1Entry(l1, i);
    if (offset === 0) continue;
    if (l1EntryReservedBits(l1, i) || offset % h.clusterSize !== 0 || offset + h.clusterSize > fileSize) {
      throw new XenError('EINVAL', `${path}: bad qcow2 L1 entry ${i}: L2 table at ${offset} is unaligned or past the end of the file`);
    }
    const over = fixedMetadataAt(h, offset);
    if (over) throw new XenError('EINVAL', `${path}: bad qcow2 L1 entry ${i}: L2 table at ${offset} overlaps ${over}`);
    if (!readOnly && !copied) {
      throw new XenError('EOPNOTSUPP', `${path}: qcow2 L2 table ${i} is shared (refcount > 1); writing such images is not supported`);
    }
  }
}
