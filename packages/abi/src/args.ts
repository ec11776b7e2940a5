/**
 * Checks for arguments that arrive from another process.  Every handler runs
 * its arguments through these before use, so a hostile or buggy peer gets
 * EINVAL naming the field instead of a crash.  Pure functions.
 */
import { XenError } from './errno.js';
import { isValidDomId, type DomId } from './domid.js';

export type Fields = Record<string, unknown>;

export function argObject(op: string, args: unknown): Fields {
  if (typeof args !== 'object' || args === null || Array.isArray(args) || args instanceof Uint8Array) {
    throw new XenError('EINVAL', `${op}: arguments must be a map`);
  }
  return args as Fields;
}

export function argString(op: string, a: Fields, key: string, maxLen = 4096): string {
  const v = a[key];
  if (typeof v !== 'string') throw new XenError('EINVAL', `${op}: ${key} must be a string`);
  if (v.length > maxLen) throw new XenError('E2BIG', `${op}: ${key} is longer than ${maxLen} characters`);
  return v;
}

export function argOptString(op: string, a: Fields, key: string, maxLen = 4096): string | undefined {
  return a[key] === undefined || a[key] === null ? undefined : argString(op, a, key, maxLen);
}

export function argInt(op: string, a: Fields, key: string, min: number, max: number): number {
  const v = a[key];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new XenError('EINVAL', `${op}: ${key} must be an integer`);
  if (v < min || v > max) throw new XenError('EINVAL', `${op}: ${key}=${v} is outside ${min}..${max}`);
  return v;
}

export function argOptInt(op: string, a: Fields, key: string, min: number, max: number): number | undefined {
  return a[key] === undefined || a[key] === null ? undefined : argInt(op, a, key, min, max);
}

export function argDomId(op: string, a: Fields, key = 'domid'): DomId {
  const v = a[key];
  if (!isValidDomId(v)) throw new XenError('EINVAL', `${op}: ${key} must be a domain id (0..32751)`);
  return v;
}

export function argEnum<T extends string>(op: string, a: Fields, key: string, allowed: readonly T[]): T {
  const v = a[key];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new XenError('EINVAL', `${op}: ${key} must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}
