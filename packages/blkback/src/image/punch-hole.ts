/**
 * Hole punching for raw discards.  Node has no fallocate(2), so a large
 * discard runs util-linux's `fallocate --punch-hole` (FALLOC_FL_PUNCH_HOLE |
 * FALLOC_FL_KEEP_SIZE): the range reads as zeros, the file keeps its size and
 * the host filesystem gets the blocks back.  Small ranges, or a host where the
 * tool or the filesystem cannot do it, get zeros written instead.
 */
import { execFile } from 'node:child_process';
import type { FileHandle } from 'node:fs/promises';
import { writeZeros } from './file-io.js';

/** Below this a discard just writes zeros (cheaper than starting a process). */
export const PUNCH_MIN_BYTES = 1 << 20;

let punchWorks = true;

/** Make [offset, offset+length) of the file read as zeros, keeping its size. */
export async function discardRange(fh: FileHandle, path: string, offset: number, length: number): Promise<void> {
  if (length >= PUNCH_MIN_BYTES && punchWorks && (await punch(path, offset, length))) return;
  await writeZeros(fh, offset, length);
}

function punch(path: string, offset: number, length: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('fallocate', ['--punch-hole', '--keep-size', '--offset', String(offset), '--length', String(length), path], (err) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') punchWorks = false; // no util-linux here
      resolve(!err);
    });
  });
}
