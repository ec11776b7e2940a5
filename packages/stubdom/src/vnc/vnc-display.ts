/**
 * Listening for VNC viewers where the guest's xl.cfg(5) vnc* keys say
 * (the rules are packages/abi/src/vnc.ts: libxl_dm.c's).
 */
import { VNC_BASE_PORT, VNC_FIND_UNUSED_SPAN, XenError, vncTarget, type VncEndpoint, type VncOptions } from '@xenbox/abi';
import type { RfbServer } from './rfb-server.js';

// The toolstack/device-model contract lives in packages/abi/src/vnc.ts.
export { VNC_BASE_PORT, VNC_FIND_UNUSED_SPAN, DEFAULT_VNC_LISTEN, vncTarget, type VncEndpoint, type VncOptions } from '@xenbox/abi';

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
