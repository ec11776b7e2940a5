/**
 * VNC Authentication (RFC 6143 §7.2.2): the server sends a random 16-byte
 * challenge, the client answers it DES-encrypted with the password as key.
 * The key is the password's first 8 bytes, zero-padded, and — the quirk of
 * the original VNC code (its d3des takes bit 0 of each key byte as DES's
 * first bit) — each byte's bits reversed for a standard DES.
 *
 * Node's OpenSSL 3 has no single DES in its default provider; two-key
 * triple DES (des-ede-ecb) with both keys equal is single DES
 * (E_K(D_K(E_K(x))) = E_K(x)).  VNC passwords are weak by design (8
 * characters, DES): RFC 6143 §9 says as much; this is what xl.cfg's
 * vncpasswd asks for, as QEMU's `-vnc ...,password` gives it.
 */
import { createCipheriv, randomBytes, timingSafeEqual } from 'node:crypto';

export const VNC_CHALLENGE_LENGTH = 16;
const DES_KEY_LENGTH = 8;

function reverseBits(b: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) if (b & (1 << i)) r |= 0x80 >> i;
  return r;
}

/** The standard-DES key VNC makes of a password (or of vncpasswd's fixed key). */
export function vncDesKey(secret: Uint8Array | string): Buffer {
  const raw = typeof secret === 'string' ? Buffer.from(secret, 'latin1') : Buffer.from(secret);
  const key = Buffer.alloc(DES_KEY_LENGTH);
  for (let i = 0; i < DES_KEY_LENGTH && i < raw.length; i++) key[i] = reverseBits(raw[i]!);
  return key;
}

/** DES-ECB over whole 8-byte blocks. */
export function desEncrypt(key: Buffer, data: Buffer): Buffer {
  const c = createCipheriv('des-ede-ecb', Buffer.concat([key, key]), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

export function vncChallenge(): Buffer {
  return randomBytes(VNC_CHALLENGE_LENGTH);
}

/** What a client knowing `password` answers to `challenge`. */
export function vncAuthResponse(password: string, challenge: Buffer): Buffer {
  return desEncrypt(vncDesKey(password), challenge);
}

export function vncAuthOk(password: string, challenge: Buffer, response: Buffer): boolean {
  const want = vncAuthResponse(password, challenge);
  return response.length === want.length && timingSafeEqual(response, want);
}
