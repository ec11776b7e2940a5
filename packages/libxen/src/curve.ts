/**
 * CURVE for tcp:// endpoints (DESIGN §3): over a network the sockets are
 * encrypted and authenticated with CurveZMQ, and a ZAP handler decides which
 * client keys may connect — without one, libzmq accepts any key.  Over ipc://
 * the run dir's 0700 mode is the protection, as for Xen's privcmd device.
 *
 *   $RUN_DIR/hypervisor/curve.pub        the server's public key (Z85), for clients
 *   $RUN_DIR/hypervisor/curve.key        its secret key (mode 0600)
 *   $RUN_DIR/hypervisor/curve-clients    authorized client public keys, one per line
 *
 * The domain token is still required in `hello`: CURVE decides who may talk,
 * the token which domain they are.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Reply, curveKeyPair } from 'zeromq';
import type { Logger } from 'pino';

export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

/** What a client needs to reach a CURVE server. */
export interface CurveClientKeys extends CurveKeyPair {
  serverKey: string;
}

export const curveFiles = (dir: string) => ({
  publicKey: join(dir, 'curve.pub'),
  secretKey: join(dir, 'curve.key'),
  clients: join(dir, 'curve-clients'),
});

/** The server's key pair, created on first use and kept in `dir`. */
export function loadOrCreateServerKeys(dir: string): CurveKeyPair {
  const f = curveFiles(dir);
  if (existsSync(f.secretKey) && existsSync(f.publicKey)) {
    return { publicKey: readFileSync(f.publicKey, 'utf8').trim(), secretKey: readFileSync(f.secretKey, 'utf8').trim() };
  }
  const keys = curveKeyPair();
  writeFileSync(f.secretKey, keys.secretKey + '\n', { mode: 0o600 });
  writeFileSync(f.publicKey, keys.publicKey + '\n', { mode: 0o644 });
  return keys;
}

/** Z85 public keys allowed to connect, read afresh for each handshake so adding one needs no restart. */
export function readAuthorizedKeys(file: string): Set<string> {
  if (!existsSync(file)) return new Set();
  return new Set(
    readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#')),
  );
}

/** Z85-encode a 32-byte key (ZMQ RFC 32), for comparing what ZAP hands us with the key files. */
export function z85Encode(data: Uint8Array): string {
  const chars = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
  let out = '';
  for (let i = 0; i < data.length; i += 4) {
    let v = ((data[i]! << 24) | (data[i + 1]! << 16) | (data[i + 2]! << 8) | data[i + 3]!) >>> 0;
    const block: string[] = [];
    for (let j = 0; j < 5; j++) {
      block.unshift(chars[v % 85]!);
      v = Math.floor(v / 85);
    }
    out += block.join('');
  }
  return out;
}

/**
 * A ZAP handler (ZMQ RFC 27) for CURVE: one per process, on
 * inproc://zeromq.zap.01 in the default context.  It accepts a client whose
 * public key is in `authorizedKeysFile` and refuses everyone else (400).
 */
export class ZapHandler {
  private readonly sock = new Reply({ linger: 0 });
  private closed = false;

  constructor(
    private readonly authorizedKeysFile: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.sock.bind('inproc://zeromq.zap.01');
    void this.serve();
  }

  close(): void {
    this.closed = true;
    this.sock.close();
  }

  private async serve(): Promise<void> {
    try {
      for await (const [version, requestId, , address, , mechanism, credentials] of this.sock) {
        const { status, text, user } = this.decide(String(mechanism), credentials);
        if (status !== '200') this.log.warn({ address: String(address), mechanism: String(mechanism) }, `ZAP refused a connection: ${text}`);
        await this.sock.send([version!, requestId!, status, text, user, Buffer.alloc(0)]);
      }
    } catch (e) {
      if (!this.closed) this.log.error({ err: e }, 'ZAP handler failed');
    }
  }

  private decide(mechanism: string, credentials: Buffer | undefined): { status: string; text: string; user: string } {
    if (mechanism !== 'CURVE' || !credentials || credentials.length !== 32) return { status: '400', text: `mechanism ${mechanism} is not accepted here`, user: '' };
    const key = z85Encode(credentials);
    if (!readAuthorizedKeys(this.authorizedKeysFile).has(key)) return { status: '400', text: `client key ${key} is not in ${this.authorizedKeysFile}`, user: '' };
    return { status: '200', text: 'OK', user: key };
  }
}
