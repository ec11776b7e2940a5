/** The bridges a netback serves, from its stack-config arguments. */
import { XenError } from '@xenbox/abi';

/** Bridge names become Linux-like interface names: at most 15 characters (IFNAMSIZ - 1). */
const BRIDGE_NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

export function bridgesFromArgs(args: Record<string, unknown>): string[] {
  const bridges = args.bridges ?? ['xenbr0'];
  if (!Array.isArray(bridges) || !bridges.every((b) => typeof b === 'string' && BRIDGE_NAME_RE.test(b))) {
    throw new XenError('EINVAL', `netback: bridges must be a list of interface names (1-15 of A-Z a-z 0-9 _ . -), got ${JSON.stringify(bridges)}`);
  }
  return bridges as string[];
}
