/**
 * netback's arguments, from its stack-config entry (XENBOX_ARGS):
 *
 *   { "bridges": ["xenbr0", "xenbr1"],          default ["xenbr0"]
 *     "pcap": { "xenbr0": "captures/br0.pcap" }, capture one bridge to a file
 *     "pcapDir": "captures" }                    capture every bridge to DIR/<bridge>.pcap
 *
 * Relative capture paths are taken from the run directory.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { XenError } from '@xenbox/abi';

/** Bridge names become Linux-like interface names: at most 15 characters (IFNAMSIZ - 1). */
const BRIDGE_NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const KNOWN_KEYS = ['bridges', 'pcap', 'pcapDir'];

export function bridgesFromArgs(args: Record<string, unknown>): string[] {
  const bridges = args.bridges ?? ['xenbr0'];
  if (!Array.isArray(bridges) || !bridges.every((b) => typeof b === 'string' && BRIDGE_NAME_RE.test(b))) {
    throw new XenError('EINVAL', `netback: bridges must be a list of interface names (1-15 of A-Z a-z 0-9 _ . -), got ${JSON.stringify(bridges)}`);
  }
  return bridges as string[];
}

export interface NetbackConfig {
  bridges: string[];
  /** bridge -> capture file (absolute). */
  pcap: Map<string, string>;
}

export function netbackConfigFromArgs(args: Record<string, unknown>, runDir: string): NetbackConfig {
  for (const k of Object.keys(args)) {
    if (!KNOWN_KEYS.includes(k)) throw new XenError('EINVAL', `netback: unknown argument '${k}' (expected ${KNOWN_KEYS.join(', ')})`);
  }
  const bridges = bridgesFromArgs(args);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(runDir, p));
  const pcap = new Map<string, string>();
  if (args.pcapDir !== undefined) {
    if (typeof args.pcapDir !== 'string' || args.pcapDir === '') throw new XenError('EINVAL', `netback: pcapDir must be a directory path, got ${JSON.stringify(args.pcapDir)}`);
    for (const b of bridges) pcap.set(b, join(abs(args.pcapDir), `${b}.pcap`));
  }
  if (args.pcap !== undefined) {
    const p = args.pcap;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new XenError('EINVAL', `netback: pcap must map bridge names to files, got ${JSON.stringify(p)}`);
    for (const [b, file] of Object.entries(p as Record<string, unknown>)) {
      if (!bridges.includes(b)) throw new XenError('EINVAL', `netback: pcap names bridge '${b}', which is not one of this netback's bridges (${bridges.join(', ')})`);
      if (typeof file !== 'string' || file === '') throw new XenError('EINVAL', `netback: pcap.${b} must be a file path`);
      pcap.set(b, abs(file));
    }
  }
  return { bridges, pcap };
}
