/**
 * Positional file I/O that always moves the whole buffer: pread/pwrite may
 * return short counts, and a read past EOF (a qcow2 cluster at the file's
 * tail, a raw file truncated under us) yields zeros rather than garbage.
 */
import type { FileHandle } from 'node:fs/promises';

/** Read buf.length bytes at `pos`; bytes past EOF read as zero. */
export async function preadFull(fh: FileHandle, buf: Uint8Array, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.byteLength) {
    const { bytesRead } = await fh.read(buf, done, buf.byteLength - done, pos + done);
    if (bytesRead === 0) {
      buf.fill(0, done);
      return;
    }
    done += bytesRead;
  }
}

/** Write all of `data` at `pos`. */
export async function pwriteFull(fh: FileHandle, data: Uint8Array, pos: number): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const { bytesWritten } = await fh.write(data, done, data.byteLength - done, pos + done);
    done += bytesWritten;
  }
}

const ZERO_CHUNK = 1 << 20;
let zeros: Uint8Array | undefined;

/** Write `length` zero bytes at `pos`, a MiB at a time. */
export async function writeZeros(fh: FileHandle, pos: number, length: number): Promise<void> {
  zeros ??= new Uint8Array(ZERO_CHUNK);
  for (let done = 0; done < length; done += ZERO_CHUNK) {
    const n = Math.min(ZERO_CHUNK, length - done);
    await pwriteFull(fh, n === ZERO_CHUNK ? zeros : zeros.subarray(0, n), pos + done);
  }
}

/**
 * Wait for every promise, then throw the first failure: an operation's error
 * is reported only once all of its I/O has stopped, so nothing it started is
 * still writing when its caller (or the quarantine of freed clusters) moves on.
 */
export async function settleAll(ps: Promise<unknown>[]): Promise<void> {
  const rs = await Promise.allSettled(ps);
  for (const r of rs) if (r.status === 'rejected') throw r.reason;
}
