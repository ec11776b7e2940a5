/**
 * A VNC KeyEvent (RFC 6143 §7.5.4: an X11 keysym, pressed or released) as
 * the bytes a terminal would send down the serial line: printable Latin-1
 * keysyms are their ASCII byte, Return is CR, BackSpace ^H, Tab, Escape,
 * the arrows and Home/End/Delete the VT100/xterm sequences U-Boot's command
 * line editing understands (ESC [ A ...), and Control with a letter or
 * @[\]^_ the C0 control code (Ctrl-C interrupts U-Boot's autoboot and
 * commands).  Key releases, modifiers alone and everything else send
 * nothing.
 */
import { XK } from './rfb-protocol.js';

const CSI = '\x1b[';
const SPECIAL: ReadonlyMap<number, string> = new Map([
  [XK.Return, '\r'],
  [XK.KP_Enter, '\r'],
  [XK.BackSpace, '\b'],
  [XK.Tab, '\t'],
  [XK.Escape, '\x1b'],
  [XK.Up, `${CSI}A`],
  [XK.Down, `${CSI}B`],
  [XK.Right, `${CSI}C`],
  [XK.Left, `${CSI}D`],
  [XK.Home, `${CSI}H`],
  [XK.End, `${CSI}F`],
  [XK.Delete, `${CSI}3~`],
]);

/** Tracks the Control keys of one client and turns its key presses into bytes. */
export class KeyboardState {
  private controlDown = new Set<number>();

  /** The bytes for one KeyEvent (empty for releases and keys with no byte). */
  event(down: boolean, keysym: number): Uint8Array {
    if (keysym === XK.Control_L || keysym === XK.Control_R) {
      if (down) this.controlDown.add(keysym);
      else this.controlDown.delete(keysym);
      return new Uint8Array(0);
    }
    if (!down) return new Uint8Array(0);
    const special = SPECIAL.get(keysym);
    if (special !== undefined) return Buffer.from(special, 'latin1');
    if (keysym < 0x20 || keysym > 0x7e) return new Uint8Array(0);
    if (this.controlDown.size) {
      // Ctrl-a..z and Ctrl-@[\]^_ are 0x00..0x1f; Ctrl with other keys sends the key.
      const upper = keysym >= 0x61 && keysym <= 0x7a ? keysym - 0x20 : keysym;
      if (upper >= 0x40 && upper <= 0x5f) return Uint8Array.of(upper - 0x40);
    }
    return Uint8Array.of(keysym);
  }
}
