/**
 * xl.cfg(5)'s VNC keys for an HVM guest, read as tools/xl/xl_parse.c
 * parse_top_level_vnc_options() reads them (vnc, vnclisten, vncpasswd,
 * vncdisplay, vncunused) with libxl's defaults (libxl_create.c: vncunused on,
 * vnclisten 127.0.0.1), checked as libxl_dm.c checks them before starting
 * QEMU ("vncdisplay set, vnclisten contains display").
 *
 * One deviation: libxl turns VNC on for every HVM guest unless vnc = 0;
 * xenbox serves it only when vnc = 1 is written, so a guest opens no TCP
 * port nobody asked for.  For a PVH guest the keys mean a vfb device, which
 * xenbox has not: they are ignored with a warning.
 */
import { XenError } from '@xenbox/abi';
import { vncTarget, VNC_BASE_PORT } from '@xenbox/abi';
import { configError, formatPos } from './lexer.js';
import type { ConfigSetting } from './parser.js';
import { settingBoolean, settingNumber, settingString } from './typed-values.js';

export const VNC_KEYS = ['vnc', 'vnclisten', 'vncdisplay', 'vncunused', 'vncpasswd'] as const;

/** libxl_vnc_info, as the device model takes it. */
export interface VncConfig {
  /** vnclisten: ADDRESS or ADDRESS:DISPLAY (default 127.0.0.1). */
  listen?: string;
  /** vncdisplay: TCP port 5900 + display. */
  display?: number;
  /** vncunused: take the next free display if this one is taken. */
  findUnused: boolean;
  /** vncpasswd: VNC authentication (only its first 8 characters count, as in every VNC server). */
  passwd?: string;
}

export function parseVncConfig(get: (k: string) => ConfigSetting | undefined, type: 'pvh' | 'hvm', notes: string[]): VncConfig | undefined {
  if (type !== 'hvm') {
    for (const k of VNC_KEYS) {
      const s = get(k);
      if (s) notes.push(`${formatPos(s.pos)}: warning: \`${k}' only applies to hvm guests (a PV guest's vfb is not supported); ignored for a ${type} guest`);
    }
    return undefined;
  }
  const vnc = get('vnc');
  if (!vnc || !settingBoolean(vnc)) return undefined;
  const listenSetting = get('vnclisten');
  const displaySetting = get('vncdisplay');
  const unusedSetting = get('vncunused');
  const passwdSetting = get('vncpasswd');
  const out: VncConfig = { findUnused: unusedSetting ? settingBoolean(unusedSetting) : true };
  if (listenSetting) out.listen = settingString(listenSetting);
  if (displaySetting) out.display = settingNumber(displaySetting, { min: 0, max: 65535 - VNC_BASE_PORT });
  const passwd = passwdSetting ? settingString(passwdSetting) : '';
  if (passwd !== '') out.passwd = passwd; // "" means no password, as in libxl_dm.c
  try {
    vncTarget(out);
  } catch (e) {
    throw configError((listenSetting ?? displaySetting)!.value.pos, e instanceof XenError ? e.detail : (e as Error).message);
  }
  return out;
}
