/**
 * The RFB protocol's numbers and byte layouts (RFC 6143, "The Remote
 * Framebuffer Protocol", version 3.8), the ones xenbox's VNC server speaks.
 * Every integer on the wire is big-endian.
 */

/** §7.1.1 ProtocolVersion: 12 bytes, "RFB 003.008\n". */
export const RFB_VERSION_LENGTH = 12;
export const RFB_SERVER_VERSION = 'RFB 003.008\n';
export const RFB_VERSION_RE = /^RFB (\d{3})\.(\d{3})\n$/;

/** §7.1.2 security types. */
export const SECURITY = { INVALID: 0, NONE: 1, VNC_AUTH: 2 } as const;
/** §7.1.3 SecurityResult. */
export const SECURITY_RESULT = { OK: 0, FAILED: 1 } as const;

/** §7.5 client-to-server message types, with their fixed lengths (type byte included). */
export const CLIENT_MSG = {
  SET_PIXEL_FORMAT: 0,
  SET_ENCODINGS: 2,
  FRAMEBUFFER_UPDATE_REQUEST: 3,
  KEY_EVENT: 4,
  POINTER_EVENT: 5,
  CLIENT_CUT_TEXT: 6,
} as const;
export const CLIENT_MSG_LENGTH = {
  [CLIENT_MSG.SET_PIXEL_FORMAT]: 20,
  /** Header only: then 4 bytes per encoding. */
  [CLIENT_MSG.SET_ENCODINGS]: 4,
  [CLIENT_MSG.FRAMEBUFFER_UPDATE_REQUEST]: 10,
  [CLIENT_MSG.KEY_EVENT]: 8,
  [CLIENT_MSG.POINTER_EVENT]: 6,
  /** Header only: then the text's length in bytes. */
  [CLIENT_MSG.CLIENT_CUT_TEXT]: 8,
} as const;

/** §7.6 server-to-client message types. */
export const SERVER_MSG = { FRAMEBUFFER_UPDATE: 0, SET_COLOUR_MAP_ENTRIES: 1, BELL: 2, SERVER_CUT_TEXT: 3 } as const;

/** §7.7 encodings: Raw is the one every client must accept. */
export const ENCODING = { RAW: 0, COPY_RECT: 1 } as const;

/** §7.4 PIXEL_FORMAT: 16 bytes. */
export const PIXEL_FORMAT_LENGTH = 16;
/** §7.3.2 ServerInit: width, height, pixel format, name length, then the name. */
export const SERVER_INIT_HEADER_LENGTH = 4 + PIXEL_FORMAT_LENGTH + 4;
/** §7.6.1 FramebufferUpdate header and rectangle header. */
export const UPDATE_HEADER_LENGTH = 4;
export const RECT_HEADER_LENGTH = 12;

/** X11 keysyms (RFC 6143 §7.5.4 refers to <X11/keysymdef.h>) that the console maps. */
export const XK = {
  BackSpace: 0xff08,
  Tab: 0xff09,
  Return: 0xff0d,
  Escape: 0xff1b,
  Home: 0xff50,
  Left: 0xff51,
  Up: 0xff52,
  Right: 0xff53,
  Down: 0xff54,
  End: 0xff57,
  KP_Enter: 0xff8d,
  Delete: 0xffff,
  Control_L: 0xffe3,
  Control_R: 0xffe4,
} as const;
