/**
 * More checks for arguments from other processes (see args.ts): byte
 * strings, arrays of records, booleans and domids that may be DOMID_SELF.
 */
import { XenError } from './errno.js';
import { DOMID_SELF, isValidDomId, type DomId } from './domid.js';
import { argObject, type Fields } from './args.js';

export function argBytes(op: string, a: Fields, key: string, maxLen: number): Uint8Array {
  const v = a[key];
  if (!(v instanceof Uint8Array)) throw new XenError('EINVAL', `${op}: ${key} must be a byte string`);
  if (v.length > maxLen) throw new XenError('E2BIG', `${op}: ${key} is ${v.length} bytes, more than ${maxLen}`);
  return v;
}

export function argOptBool(op: string, a: Fields, key: string): boolean | undefined {
  const v = a[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new XenError('EINVAL', `${op}: ${key} must be a boolean`);
  return v;
}

/** An array of at most `max` maps, each handed back as Fields. */
export function argRecords(op: string, a: Fields, key: string, max: number): Fields[] {
  const v = a[key];
  if (!Array.isArray(v)) throw new XenError('EINVAL', `${op}: ${key} must be an array`);
  if (v.length > max) throw new XenError('E2BIG', `${op}: ${key} has ${v.length} entries, more than ${max}`);
  return v.map((x, i) => argObject(`${op}: ${key}[${i}]`, x));
}

/** An array of at most `max` integers within min..max. */
export function argIntArray(op: string, a: Fields, key: string, max: number, lo: number, hi: number): number[] {
  const v = a[key];
  if (!Array.isArray(v)) throw new XenError('EINVAL', `${op}: ${key} must be an array`);
  if (v.length > max) throw new XenError('E2BIG', `${op}: ${key} has ${v.length} entries, more than ${max}`);
  for (const [i, x] of v.entries()) {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < lo || x > hi) throw new XenError('EINVAL', `${op}: ${key}[${i}] must be an integer in ${lo}..${hi}`);
  }
  return v as number[];
}

/** A domid, where DOMID_SELF (0x7ff0) is allowed and returned as is. */
export function argDomIdOrSelf(op: string, a: Fields, key: string): DomId {
  const v = a[key];
  if (v === DOMID_SELF || isValidDomId(v)) return v as DomId;
  throw new XenError('EINVAL', `${op}: ${key} must be a domain id (0..32751) or DOMID_SELF`);
}
