/**
 * A raw image: the file is the disk, byte for byte.  The virtual size is the
 * file size rounded down to whole sectors (Linux blkback's vbd_sz likewise
 * counts whole 512-byte sectors of the backing device).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { XenError } from '@xenbox/abi';
import type { BlockImage } from './block-image.js';
import { SECTOR_SIZE, checkRange, checkWritable } from './image-bounds.js';
import { imageIoError } from './image-errors.js';
import { preadFull, pwriteFull } from './file-io.js';
import { discardRange } from './punch-hole.js';

export async function openRawImage(path: string, readOnly: boolean): Promise<BlockImage> {
  let fh: FileHandle;
  try {
    fh = await open(path, readOnly ? 'r' : 'r+');
  } catch (e) {
    throw imageIoError(path, 'cannot open raw image', e);
  }
  try {
    const st = await fh.stat();
    // Block devices would need BLKGETSIZE64 for their size, which Node lacks.
    if (!st.isFile()) throw new XenError('EINVAL', `${path}: not a regular file`);
    const size = st.size - (st.size % SECTOR_SIZE);
    return new RawImage(path, fh, size, readOnly);
  } catch (e) {
    await fh.close();
    throw imageIoError(path, 'cannot open raw image', e);
  }
}

class RawImage implements BlockImage {
  readonly format = 'raw' as const;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
    readonly readOnly: boolean,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.checkOpen();
    checkRange(this.path, this.size, offset, length);
    const buf = Buffer.allocUnsafe(length);
    await this.io('read', () => preadFull(this.fh, buf, offset));
    return buf;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkOpen();
    checkWritable(this.path, this.readOnly);
    checkRange(this.path, this.size, offset, data.byteLength);
    await this.io('write', () => pwriteFull(this.fh, data, offset));
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (this.readOnly) return;
    await this.io('flush', () => this.fh.datasync());
  }

  /**
   * The range reads as zeros afterwards and the file keeps its size: a hole
   * is punched for large ranges, zeros are written for small ones (see
   * punch-hole.ts).
   */
  async discard(offset: number, length: number): Promise<void> {
    this.checkOpen();
    checkWritable(this.path, this.readOnly);
    checkRange(this.path, this.size, offset, length);
    await this.io('discard', () => discardRange(this.fh, this.path, offset, length));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new XenError('EBADF', `${this.path}: image is closed`);
  }

  private async io<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw imageIoError(this.path, what, e);
    }
  }
}
