/**
 * Xen's error numbers, from xen/include/public/errno.h.
 *
 * Every error that crosses a process boundary in xenbox carries one of these
 * names plus a human message.  The numeric values are Xen's (which are Linux's
 * on x86), so a value can be compared with what real Xen returns.
 */
export const XEN_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  ETIME: 62,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EILSEQ: 84,
  ENOTSOCK: 88,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
} as const;

export type XenErrno = keyof typeof XEN_ERRNO;

export function isXenErrno(name: unknown): name is XenErrno {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(XEN_ERRNO, name);
}

/** An error as a value: Xen's errno name and a message that names the problem. */
export interface XenErrorValue {
  errno: XenErrno;
  message: string;
}

/**
 * The one error class of the stack.  Thrown inside a process, serialised as
 * {@link XenErrorValue} on the wire, re-created on the other side.
 */
export class XenError extends Error implements XenErrorValue {
  readonly errno: XenErrno;
  constructor(errno: XenErrno, message: string) {
    super(`${errno}: ${message}`);
    this.name = 'XenError';
    this.errno = errno;
  }
  /** The message without the errno prefix, as sent on the wire. */
  get detail(): string {
    return this.message.slice(this.errno.length + 2);
  }
  toValue(): XenErrorValue {
    return { errno: this.errno, message: this.detail };
  }
  static fromValue(v: XenErrorValue): XenError {
    return new XenError(v.errno, v.message);
  }
}

/** Turn anything thrown into a wire error value; unknown failures become EIO. */
export function toErrorValue(e: unknown): XenErrorValue {
  if (e instanceof XenError) return e.toValue();
  if (e instanceof Error) return { errno: 'EIO', message: e.message };
  return { errno: 'EIO', message: String(e) };
}
