/**
 * Format probing, as QEMU's qcow2_probe does it: the 4-byte magic `QFI\xfb`
 * (0x514649fb, docs/interop/qcow2.txt) at offset 0 means qcow2, anything
 * else is raw.
 */
import { open } from 'node:fs/promises';
import type { ImageFormat } from './block-image.js';
import { QCOW2_MAGIC } from './qcow2-header.js';
import { imageIoError } from './image-errors.js';

export async function probeImageFormat(path: string): Promise<ImageFormat> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw imageIoError(path, 'cannot open image', e);
  }
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return bytesRead === 4 && buf.readUInt32BE(0) === QCOW2_MAGIC ? 'qcow2' : 'raw';
  } catch (e) {
    throw imageIoError(path, 'cannot read image to probe its format', e);
  } finally {
    await fh.close();
  }
}
