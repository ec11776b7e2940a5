/**
 * The disk image a vbd is backed by, as blkback sees it: a flat array of
 * 512-byte sectors (blkif.h counts everything in 512-byte sectors whatever the
 * physical sector size) that can be read, written, flushed and discarded.
 *
 * Two formats, as xl's disk spec `format=` names them (xl-disk-configuration
 * (5)): `raw` (the default) and `qcow2` (QEMU's docs/interop/qcow2.txt).
 */
import { XenError } from '@xenbox/abi';
import { openRawImage } from './raw-image.js';
import { openQcow2Image } from './qcow2-image.js';
import { probeImageFormat } from './image-probe.js';

export type ImageFormat = 'raw' | 'qcow2';

export interface BlockImage {
  readonly path: string;
  readonly format: ImageFormat;
  /** Virtual size in bytes (a multiple of 512). */
  readonly size: number;
  readonly readOnly: boolean;
  /**
   * Read `length` bytes at byte `offset` (both multiples of 512, within size)
   * into a new buffer; unallocated qcow2 clusters read from the backing file
   * (zeros past its end), or as zeros if there is none.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Write at byte offset (multiples of 512). EROFS on a read-only image. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Make everything written so far durable (fdatasync, and for qcow2 the metadata first). */
  flush(): Promise<void>;
  /**
   * Discard a range; reads of it then return zeros and the size stays.
   * raw: a hole is punched (1 MiB or more) or zeros are written; qcow2: whole
   * clusters inside the range are deallocated (zero clusters if there is a
   * backing file), partially covered ones zeroed.
   */
  discard(offset: number, length: number): Promise<void>;
  close(): Promise<void>;
}

export interface OpenImageOptions {
  /** xl's `format=`; absent = probe (qcow2 magic -> qcow2, else raw). */
  format?: ImageFormat;
  readOnly?: boolean;
}

/**
 * Open a disk image.  With no format, a file starting with qcow2's magic
 * `QFI\xfb` is qcow2 and anything else raw; an explicit `qcow2` on a file
 * without the magic is EINVAL (QEMU: "Image is not in qcow2 format").
 *
 * A qcow2 image may name a backing file only when its format was given, not
 * probed: otherwise a guest that writes a qcow2 header into its raw disk could
 * make the next open read any file of the host through it (QEMU's
 * CVE-2008-2004).  Backing files are opened read-only.
 */
export async function openBlockImage(path: string, opts: OpenImageOptions = {}): Promise<BlockImage> {
  return openImageAt(path, opts, 0);
}

async function openImageAt(path: string, opts: OpenImageOptions, depth: number): Promise<BlockImage> {
  const readOnly = opts.readOnly ?? false;
  const format = opts.format ?? (await probeImageFormat(path));
  switch (format) {
    case 'raw':
      return openRawImage(path, readOnly);
    case 'qcow2':
      return openQcow2Image(path, readOnly, {
        backingAllowed: opts.format === 'qcow2',
        depth,
        openBacking: (p, f) => openImageAt(p, { format: f, readOnly: true }, depth + 1),
      });
    default:
      throw new XenError('EINVAL', `${path}: unknown image format ${JSON.stringify(format)} (raw or qcow2)`);
  }
}
