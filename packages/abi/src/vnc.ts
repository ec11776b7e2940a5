/**
 * Where an HVM guest's VNC console listens, and how its device model tells
 * the toolstack: the contract between xl (which reads the xl.cfg(5) vnc*
 * keys) and the device model (which serves RFB).  As libxl turns the keys
 * into QEMU's `-vnc` (tools/libs/light/libxl_dm.c):
 * - vnclisten = "ADDRESS" listens on ADDRESS, display vncdisplay (default 0);
 *   vnclisten = "ADDRESS:DISPLAY" names both, and then vncdisplay must not
 *   be set as well ("vncdisplay set, vnclisten contains display");
 * - no vnclisten: 127.0.0.1;
 * - TCP port = 5900 + display;
 * - vncunused (libxl's default: on) is QEMU's `to=99`: if the port is taken,
 *   the next ones up to display + 99 are tried.
 */
import { XenError } from './errno.js';

export const VNC_BASE_PORT = 5900;
/** libxl asks QEMU to try this many displays after the first (",to=99"). */
export const VNC_FIND_UNUSED_SPAN = 99;
export const DEFAULT_VNC_LISTEN = '127.0.0.1';

/** The device model's VNC options (xl.cfg vnc*, carried in XENBOX_ARGS). */
export interface VncOptions {
  /** vnclisten: an address, optionally ":DISPLAY". */
  listen?: string;
  /** vncdisplay. */
  display?: number;
  /** vncunused: look for a free display from `display` on. */
  findUnused: boolean;
}

export interface VncEndpoint {
  host: string;
  display: number;
  port: number;
}

/** The address and first display to try, or EINVAL for a contradiction. */
export function vncTarget(o: VncOptions): { host: string; display: number } {
  const listen = o.listen ?? DEFAULT_VNC_LISTEN;
  const colon = listen.lastIndexOf(':');
  // An IPv6 literal is bracketed when it carries a display: [::1]:2.
  const bare = listen.startsWith('[') ? listen.endsWith(']') : colon < 0 || listen.indexOf(':') !== colon;
  if (bare) return { host: listen.replace(/^\[(.*)\]$/, '$1'), display: o.display ?? 0 };
  if (o.display) throw new XenError('EINVAL', `vncdisplay set, vnclisten contains display ("${listen}")`);
  const display = Number(listen.slice(colon + 1));
  if (!Number.isInteger(display) || display < 0 || VNC_BASE_PORT + display > 65535) throw new XenError('EINVAL', `vnclisten "${listen}": the display after ':' must be a number from 0 to ${65535 - VNC_BASE_PORT}`);
  return { host: listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), display };
}

/** The device model's announcement of its VNC endpoint on its readiness pipe, before `ready`. */
export const VNC_READY_RE = /^vnc (\S+) (\d+) (\d+)$/m;

export function vncReadyLine(ep: VncEndpoint): string {
  return `vnc ${ep.host} ${ep.port} ${ep.display}\n`;
}

/** The VNC endpoint in the device model's readiness text, if it announced one. */
export function parseVncReady(text: string): VncEndpoint | null {
  const m = VNC_READY_RE.exec(text);
  return m ? { host: m[1]!, port: Number(m[2]), display: Number(m[3]) } : null;
}
