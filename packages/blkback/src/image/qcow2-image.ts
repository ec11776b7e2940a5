/**
 * qcow2 images (QEMU's docs/interop/qcow2.txt).
 */
import { XenError } from '@xenbox/abi';
import type { BlockImage } from './block-image.js';

export async function openQcow2Image(path: string, readOnly: boolean): Promise<BlockImage> {
  void readOnly;
  throw new XenError('EOPNOTSUPP', `${path}: qcow2 support is being written`);
}
