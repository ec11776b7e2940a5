/**
 * One request being served: who sent it, in which transaction, and helpers
 * to read its arguments the way tools/xenstored/core.c does (onearg(),
 * get_strings(), xenstore_count_strings()).
 */
import { XenError, splitXsStrings, type XsHeader } from '@xenbox/abi';
import type { Connection } from './connection.js';
import type { Transaction } from './transaction.js';
import type { NodeView } from './view.js';
import type { Xenstored } from './xenstored.js';

export interface Request {
  readonly xs: Xenstored;
  readonly conn: Connection;
  readonly hdr: XsHeader;
  readonly payload: Buffer;
  readonly tx: Transaction | undefined;
  /** The transaction's view, or the live store. */
  readonly view: NodeView;
  /** Run after the reply is queued (WATCH's first event follows its OK). */
  readonly after: Array<() => void>;
}

/** A reply payload: bytes, or a string sent as latin1 with a terminating NUL. */
export type Reply = Buffer | string;

export const OK = 'OK';

/** core.c onearg(): the payload is exactly one string, NUL-terminated. */
export function oneArg(req: Request): string {
  const p = req.payload;
  const nul = p.indexOf(0);
  if (p.length === 0 || nul !== p.length - 1) throw new XenError('EINVAL', 'expected exactly one NUL-terminated argument');
  return p.toString('latin1', 0, nul);
}

/** All NUL-terminated strings (bytes after the last NUL are ignored, as get_strings() does). */
export function strings(req: Request): string[] {
  return splitXsStrings(req.payload);
}

/** Exactly `n` strings or EINVAL. */
export function exactly(req: Request, n: number): string[] {
  const s = strings(req);
  if (s.length !== n) throw new XenError('EINVAL', `expected ${n} NUL-terminated arguments, got ${s.length}`);
  return s;
}

/** At least `n` strings or EINVAL. */
export function atLeast(req: Request, n: number): string[] {
  const s = strings(req);
  if (s.length < n) throw new XenError('EINVAL', `expected at least ${n} NUL-terminated arguments, got ${s.length}`);
  return s;
}

/** A decimal domid argument; EINVAL for anything else. */
export function domidArg(text: string): number {
  if (!/^[0-9]{1,5}$/.test(text)) throw new XenError('EINVAL', `${JSON.stringify(text.slice(0, 32))} is not a domain id`);
  return Number(text);
}

export function requirePrivileged(req: Request, what: string): void {
  if (!req.conn.privileged) throw new XenError('EACCES', `${what} is for the privileged domain only`);
}
