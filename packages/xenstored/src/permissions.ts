/**
 * Node permissions: the text form on the wire ("b0", "r5" ...) and the
 * access check, as xenstore_strings_to_perms()/xenstore_perm_to_string()
 * (tools/libs/store) and perm_for_conn() (tools/xenstored/core.c).
 *
 * The first entry names the owner and gives the default for every domain
 * not listed; later entries grant specific domains.
 */
import { DOMID_ANY, XS_PERM_NONE, XS_PERM_OWNER, XS_PERM_READ, XS_PERM_WRITE, XenError } from '@xenbox/abi';

export interface Perm {
  readonly id: number;
  /** XS_PERM_READ | XS_PERM_WRITE bits. */
  readonly bits: number;
}
/** Never mutated: nodes share one list with the parent they inherited it from. */
export type Perms = readonly Perm[];

/** Who is asking: a connection's domain, its privilege and its SET_TARGET target. */
export interface Requester {
  /** undefined: a ZeroMQ peer that has not proved a domain yet (matches no entry). */
  readonly domid: number | undefined;
  readonly privileged: boolean;
  readonly target: number | undefined;
}

const LETTER_BITS: Record<string, number> = { n: XS_PERM_NONE, r: XS_PERM_READ, w: XS_PERM_WRITE, b: XS_PERM_READ | XS_PERM_WRITE };
const BITS_LETTER = ['n', 'r', 'w', 'b'] as const;

/** strtol(s, &end, 0) over the whole string: decimal, 0x hex or 0 octal. */
function parseDomidText(s: string): number | null {
  let m: RegExpExecArray | null;
  if ((m = /^0[xX]([0-9a-fA-F]+)$/.exec(s))) return parseInt(m[1]!, 16);
  if ((m = /^0([0-7]*)$/.exec(s))) return m[1] ? parseInt(m[1], 8) : 0;
  if (/^[1-9][0-9]*$/.test(s)) return parseInt(s, 10);
  return null;
}

/** One "r5" entry; EINVAL names what is wrong. */
export function parsePerm(text: string): Perm {
  const bits = LETTER_BITS[text.charAt(0)];
  if (bits === undefined) throw new XenError('EINVAL', `permission ${JSON.stringify(text)} must start with n, r, w or b`);
  const id = parseDomidText(text.slice(1));
  if (id === null || id > 0xffff) throw new XenError('EINVAL', `permission ${JSON.stringify(text)} does not name a domain`);
  return { id, bits };
}

export function parsePerms(texts: readonly string[]): Perms {
  return texts.map(parsePerm);
}

/** xenstore_perm_to_string(): letter then the domid in decimal. */
export function formatPerm(p: Perm): string {
  return `${BITS_LETTER[p.bits & 3]}${p.id}`;
}

export function formatPerms(perms: Perms): string[] {
  return perms.map(formatPerm);
}

export function ownerOf(perms: Perms): number {
  return perms[0]!.id;
}

/** The perms a node created by `who` under a parent with `parentPerms` gets (core.c construct_node()). */
export function inheritPerms(parentPerms: Perms, who: Requester): Perms {
  if (who.privileged || who.domid === undefined || ownerOf(parentPerms) === who.domid) return parentPerms;
  return [{ id: who.domid, bits: parentPerms[0]!.bits }, ...parentPerms.slice(1)];
}

const ALL = XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;

/**
 * core.c perm_for_conn(): privileged connections, the owner and a stub
 * domain whose target owns the node get everything; otherwise the first
 * later entry naming the domain (or its target, or DOMID_ANY) decides,
 * else the owner entry's letter.
 */
export function permFor(who: Requester, perms: Perms): number {
  const owner = perms[0]!.id;
  if (who.privileged || owner === who.domid || (who.target !== undefined && owner === who.target)) return ALL;
  for (let i = 1; i < perms.length; i++) {
    const p = perms[i]!;
    if (p.id === who.domid || (who.target !== undefined && p.id === who.target) || p.id === DOMID_ANY) return p.bits & ALL;
  }
  return perms[0]!.bits & ALL;
}

export function samePerms(a: Perms, b: Perms): boolean {
  return a === b || (a.length === b.length && a.every((p, i) => p.id === b[i]!.id && p.bits === b[i]!.bits));
}
