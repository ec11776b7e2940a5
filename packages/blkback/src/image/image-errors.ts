/**
 * Node's fs errors turned into XenErrors that name the image, so a failure
 * reaching xl or a blkif response says which file and why.
 */
import { XenError, isXenErrno } from '@xenbox/abi';

/** Rethrow `e` as a XenError; errnos Xen knows keep their name, the rest become EIO. */
export function imageIoError(path: string, what: string, e: unknown): XenError {
  if (e instanceof XenError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const errno = isXenErrno(code) ? code : 'EIO';
  const msg = e instanceof Error ? e.message : String(e);
  return new XenError(errno, `${path}: ${what}: ${msg}`);
}
