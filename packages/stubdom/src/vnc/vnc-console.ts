/**
 * The device model's VNC console (xl.cfg vnc = 1): the guest's UART output
 * goes to xenconsoled as always and, teed, to an 80×25 TextScreen that an
 * RFB server shows; keys typed in a VNC viewer reach the UART as if typed in
 * `xl console`.  QEMU does the same for a serial-only machine: its VNC
 * display shows the text console of the serial chardev (ui/console.c).
 *
 * The toolstack passes the options in XENBOX_ARGS as
 * `{"vnc": {"listen", "display", "findUnused", "name"}}`, and learns where
 * the server listens from a `vnc HOST PORT DISPLAY` line the device model
 * writes before `ready` on its readiness pipe (VNC_READY_RE).
 */
import { XenError, type VncEndpoint } from '@xenbox/abi';
import type { DeviceModel } from '../device-model.js';
import { RfbServer, type RfbLog } from './rfb-server.js';
import { TextScreen } from './text-screen.js';
import { listenVnc, type VncOptions } from './vnc-display.js';

// The readiness-pipe announcement (VNC_READY_RE, vncReadyLine, parseVncReady) is packages/abi/src/vnc.ts.
export { VNC_READY_RE, vncReadyLine, parseVncReady } from '@xenbox/abi';

export interface VncConsoleArgs extends VncOptions {
  /** The desktop name viewers show: the guest's name. */
  name: string;
  /** vncpasswd: clients must pass VNC Authentication. */
  passwd?: string;
}

/** The `vnc` member of XENBOX_ARGS, checked; null when VNC is off. */
export function vncArgs(args: Record<string, unknown>): VncConsoleArgs | null {
  const v = args.vnc;
  if (v === undefined || v === null || v === false) return null;
  const o = v as Partial<VncConsoleArgs>;
  const bad = (what: string): never => {
    throw new XenError('EINVAL', `XENBOX_ARGS vnc: ${what}`);
  };
  if (typeof v !== 'object') bad('must be an object');
  if (o.listen !== undefined && typeof o.listen !== 'string') bad('listen must be a string');
  if (o.display !== undefined && (!Number.isInteger(o.display) || o.display < 0)) bad('display must be a whole number');
  if (typeof o.findUnused !== 'boolean') bad('findUnused must be a boolean');
  if (typeof o.name !== 'string') bad('name must be a string');
  if (o.passwd !== undefined && (typeof o.passwd !== 'string' || o.passwd === '')) bad('passwd must be a non-empty string');
  return {
    findUnused: o.findUnused!, name: o.name!,
    ...(o.listen !== undefined ? { listen: o.listen } : {}),
    ...(o.display !== undefined ? { display: o.display } : {}),
    ...(o.passwd !== undefined ? { passwd: o.passwd } : {}),
  };
}

export interface VncConsole {
  server: RfbServer;
  screen: TextScreen;
  endpoint: VncEndpoint;
}

/** Tee the device model's console into a TextScreen and serve it; resolves once listening. */
export async function startVncConsole(dm: DeviceModel, o: VncConsoleArgs, log?: RfbLog): Promise<VncConsole> {
  const screen = new TextScreen();
  const server = new RfbServer({ screen, name: o.name, onKeyboard: (bytes) => dm.consoleInput(bytes), ...(o.passwd ? { password: o.passwd } : {}), ...(log ? { log } : {}) });
  const endpoint = await listenVnc(server, o);
  dm.onConsoleOutput = (data) => {
    screen.write(data);
    server.screenChanged();
  };
  log?.info({ ...endpoint, auth: o.passwd ? 'vnc' : 'none' }, 'VNC console listening');
  return { server, screen, endpoint };
}
