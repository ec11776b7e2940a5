/**
 * Reading a setting as the type its key wants, with errors naming
 * file:line:column.  Mirrors the xlu_cfg_get_* family in libxlu_cfg.c:
 *
 * - a number is parsed like strtol(text, 0): decimal, 0octal or 0xhex, and a
 *   quoted "512" is as good as 512 (Xen stores both as text);
 * - `+=` makes a value unusable as a number ("can't use += with numbers");
 * - a boolean is a number, 0 false, anything else true (xlu_cfg_get_defbool);
 * - a list where one value is wanted, or the reverse, is an error.
 *
 * Xen only warns for most of these and carries on with the default; xenbox
 * refuses the file instead, so a typo never silently changes a guest.
 */
import { configError } from './lexer.js';
import type { ConfigSetting, ConfigValue } from './parser.js';

export interface NumberBounds {
  min?: number;
  max?: number;
}

const describe = (v: ConfigValue): string => (v.kind === 'list' ? 'a list' : v.kind === 'number' ? `the number ${v.text}` : `the string "${v.value}"`);

/** strtol(text, &end, 0) with the whole text consumed; undefined if it is not such a number. */
export function parseCNumber(text: string): number | undefined {
  const m = /^[ \t]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return undefined;
  const body = m[2]!;
  const magnitude = /^0[xX]/.test(body) ? parseInt(body.slice(2), 16) : body.length > 1 && body[0] === '0' ? parseInt(body.slice(1), 8) : parseInt(body, 10);
  return m[1] === '-' ? -magnitude : magnitude;
}

function whyNotANumber(text: string): string {
  if (/^0[0-7]*[89]/.test(text)) return ` (a leading 0 makes it octal, where 8 and 9 are not digits)`;
  if (/^[0-9]+[.,]/.test(text)) return ' (only whole numbers are allowed)';
  return '';
}

export function settingNumber(s: ConfigSetting, bounds: NumberBounds = {}): number {
  const v = s.value;
  if (v.kind === 'list') throw configError(v.pos, `\`${s.key}' must be a single number, not a list`);
  if (s.added) throw configError(s.pos, `can't use += with numbers for parameter \`${s.key}'`);
  const text = v.kind === 'number' ? v.text : v.value;
  const n = parseCNumber(text);
  if (n === undefined) throw configError(v.pos, `\`${s.key}' must be a number, but \`${text}' is not a valid number${whyNotANumber(text)}`);
  if (!Number.isSafeInteger(n) || n > 2 ** 63 - 1) throw configError(v.pos, `\`${s.key}': ${text} is out of range`);
  if (bounds.min !== undefined && n < bounds.min) throw configError(v.pos, `\`${s.key}': value ${n} is smaller than the minimum ${bounds.min}`);
  if (bounds.max !== undefined && n > bounds.max) throw configError(v.pos, `\`${s.key}': value ${n} is greater than the maximum ${bounds.max}`);
  return n;
}

export function settingBoolean(s: ConfigSetting): boolean {
  const v = s.value;
  if (v.kind !== 'list' && !s.added && parseCNumber(v.kind === 'number' ? v.text : v.value) === undefined) {
    throw configError(v.pos, `\`${s.key}' is a boolean and must be 0 or 1, not ${describe(v)}`);
  }
  return settingNumber(s) !== 0;
}

export function settingString(s: ConfigSetting): string {
  const v = s.value;
  if (v.kind === 'list') throw configError(v.pos, `\`${s.key}' is a list but should be a single value (a quoted string)`);
  return v.kind === 'string' ? v.value : v.text;
}

/** A list whose items are all strings (or numbers, read as their text). */
export function settingStringList(s: ConfigSetting): string[] {
  const v = s.value;
  if (v.kind !== 'list') throw configError(v.pos, `\`${s.key}' is a single value but should be a list, e.g. ${s.key} = [ '...' ]`);
  return v.items.map((item, i) => {
    if (item.kind === 'list') throw configError(item.pos, `\`${s.key}' item ${i} is a list but should be a string`);
    return item.kind === 'string' ? item.value : item.text;
  });
}

/** A key that takes either one string or a list of strings (cpus, serial, ...). */
export function settingStringOrList(s: ConfigSetting): string | string[] {
  return s.value.kind === 'list' ? settingStringList(s) : settingString(s);
}

/** Check that one of the allowed words was given; Xen's libxl_*_from_string lookups. */
export function settingEnum<T extends string>(s: ConfigSetting, allowed: readonly T[]): T {
  const text = settingString(s);
  if (!(allowed as readonly string[]).includes(text)) {
    throw configError(s.value.pos, `\`${s.key}': unknown value "${text}" (allowed: ${allowed.join(', ')})`);
  }
  return text as T;
}
