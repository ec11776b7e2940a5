/**
 * The HVM guest's VNC console as the toolstack starts it (libxl_dm.c's
 * `-vnc` argument for QEMU, here XENBOX_ARGS for xenbox's device model,
 * packages/stubdom/src/vnc/vnc-console.ts), and where it ended up listening
 * (with vncunused the device model may take a later display than asked;
 * libxl reads QEMU's choice back from xenstore's console/vnc-port, xenbox
 * from the device model's readiness line).
 */
import { ENV_ARGS } from '@xenbox/abi';
import { parseVncReady, type VncEndpoint } from '@xenbox/abi';
import type { VncConfig } from '../xlcfg/vnc-config.js';

/** The device model's environment for `vnc`: nothing when VNC is off. */
export function vncEnv(vnc: VncConfig | undefined, guestName: string): Record<string, string> {
  return vnc ? { [ENV_ARGS]: JSON.stringify({ vnc: { ...vnc, name: guestName } }) } : {};
}

/** The endpoint the device model announced before "ready", if any. */
export function vncEndpoint(readyText: string): { vnc?: VncEndpoint } {
  const ep = parseVncReady(readyText);
  return ep ? { vnc: ep } : {};
}

export function describeVnc(ep: VncEndpoint): string {
  return `vnc: ${ep.host}:${ep.port} (display ${ep.display})`;
}
