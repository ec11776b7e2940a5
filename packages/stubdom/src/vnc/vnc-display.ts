/**
 * Where a guest's VNC server listens, from its xl.cfg(5) keys, as libxl
 * turns them into QEMU's `-vnc` (tools/libs/light/libxl_dm.c):
 * - vnclisten = "ADDRESS" listens on ADDRESS, display vncdisplay (default 0);
 *   vnclisten = "ADDRESS:DISPLAY" names both, and then vncdisplay must not
 *   be set as well ("vncdisplay set, vnclisten contains display");
 * - no vnclisten: 127.0.0.1;
 * - TCP port = 5900 + display;
 * - vncunused (libxl's default: on) is QEMU's `to=99`: if the port is taken,
 *   the next ones up to display + 99 are tried.
 */
import { XenError } from '@xenbox/abi';
import type { RfbServer } from './rfb-server.js';

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

/** Listen as the options say; with findUnused, the first free display of display..display+99. */
export async function listenVnc(server: RfbServer, o: VncOptions): Promise<VncEndpoint> {
  const { host, display } = vncTarget(o);
  const last = o.findUnused ? display + VNC_FIND_UNUSED_SPAN : display;
  for (let d = display; d <= last && VNC_BASE_PORT + d <= 65535; d++) {
    try {
      await server.listen(host, VNC_BASE_PORT + d);
      return { host, display: d, port: VNC_BASE_PORT + d };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' || d === last) throw new XenError(code === 'EADDRINUSE' ? 'EADDRINUSE' : 'EINVAL', `VNC on ${host}:${VNC_BASE_PORT + d} (display ${d}): ${(e as Error).message}${o.findUnused ? ` (displays ${display}-${last} tried)` : ''}`);
    }
  }
  throw new XenError('EINVAL', `VNC display ${display} is beyond TCP port 65535`);
}
