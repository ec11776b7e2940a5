/**
 * Compressed clusters (QEMU docs/interop/qcow2.txt, "Compressed Clusters
 * Descriptor"), read-only: a zlib raw-deflate stream (QEMU deflates with
 * windowBits -12) at an unaligned host offset spanning some 512-byte sectors.
 * Writing one replaces it with a normal cluster (the image's COW path).
 */
import type { FileHandle } from 'node:fs/promises';
import { inflateRawSync, constants as zc } from 'node:zlib';
import { XenError } from '@xenbox/abi';
import { preadFull } from './file-io.js';

export interface CompressedExtent {
  /** Host byte offset of the stream (not aligned). */
  offset: number;
  /** Bytes from `offset` to the end of its last sector. */
  length: number;
}

/** Decode bits 0-61 of a compressed L2 entry (x = 62 - (cluster_bits - 8)). */
export function decodeCompressed(desc: bigint, clusterBits: number): CompressedExtent {
  const x = BigInt(62 - (clusterBits - 8));
  const offset = Number(desc & ((1n << x) - 1n));
  const extraSectors = Number(desc >> x);
  const length = (extraSectors + 1) * 512 - (offset % 512);
  return { offset, length };
}

/** Host clusters a compressed extent touches (each holds one reference for it). */
export function compressedClusters(e: CompressedExtent, clusterSize: number): { first: number; count: number } {
  const start = e.offset - (e.offset % 512);
  const first = Math.floor(start / clusterSize);
  const last = Math.floor((e.offset + e.length - 1) / clusterSize);
  return { first, count: last - first + 1 };
}

/** Read and inflate one compressed cluster into a new cluster-sized buffer. */
export async function readCompressedCluster(
  fh: FileHandle,
  path: string,
  e: CompressedExtent,
  clusterSize: number,
  zstd: boolean,
): Promise<Buffer> {
  if (zstd) throw new XenError('EOPNOTSUPP', `${path}: zstd-compressed qcow2 clusters are not supported`);
  const input = Buffer.alloc(e.length);
  await preadFull(fh, input, e.offset);
  let out: Buffer;
  try {
    out = inflateRawSync(input, { maxOutputLength: clusterSize, finishFlush: zc.Z_SYNC_FLUSH });
  } catch (err) {
    throw new XenError('EIO', `${path}: compressed cluster at ${e.offset} does not inflate: ${(err as Error).message}`);
  }
  if (out.length !== clusterSize) {
    throw new XenError('EIO', `${path}: compressed cluster at ${e.offset} inflates to ${out.length} bytes, not ${clusterSize}`);
  }
  return out;
}
