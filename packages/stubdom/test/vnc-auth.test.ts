import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RawClient } from '../../../test/helpers/rfb-client.js';
import { RfbServer, TextScreen, desEncrypt, vncAuthResponse, vncDesKey, type RfbLog } from '@xenbox/stubdom';

const VNCSNAPSHOT = '/usr/bin/vncsnapshot';
/** vncpasswd's obfuscation key for password files (vncauth.c fixedkey). */
const VNCPASSWD_FIXED_KEY = Uint8Array.of(23, 82, 107, 6, 35, 78, 88, 7);
const dir = mkdtempSync(join(tmpdir(), 'vnc-auth-'));
const servers: RfbServer[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.sock.destroy();
  for (const s of servers.splice(0)) await s.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(password: string): Promise<{ srv: RfbServer; port: number; warnings: string[] }> {
  const screen = new TextScreen();
  screen.write(Buffer.from('U-Boot\r\n=> '));
  const warnings: string[] = [];
  const log: RfbLog = { info: () => undefined, warn: (o, m) => warnings.push(`${m}: ${(o as { reason?: string }).reason ?? ''}`) };
  const srv = new RfbServer({ screen, name: 'locked', onKeyboard: () => undefined, password, log });
  servers.push(srv);
  const { port } = await srv.listen('127.0.0.1', 0);
  return { srv, port, warnings };
}

async function open(port: number): Promise<RawClient> {
  const c = await RawClient.open(port);
  clients.push(c);
  return c;
}

describe('VNC Authentication (RFC 6143 §7.2.2) for xl.cfg vncpasswd', () => {
  it('is DES with the bit-reversed password as key (a standard DES vector; the VNC key quirk)', () => {
    expect(desEncrypt(Buffer.from('0123456789abcdef', 'hex'), Buffer.from('Now is t')).toString('hex')).toBe('3fa40e8a984d4815');
    expect([...vncDesKey('a')]).toEqual([0x86, 0, 0, 0, 0, 0, 0, 0]);
    expect(vncDesKey('longer than eight').length).toBe(8);
  });

  it('offers only type 2 to a 3.8 client, sends a challenge, and lets in the right answer', async () => {
    const { port } = await start('s3cret');
    const c = await open(port);
    await c.read(12);
    c.send('RFB 003.008\n');
    expect([...(await c.read(2))]).toEqual([1, 2]);
    c.send([2]);
    const challenge = await c.read(16);
    c.send(vncAuthResponse('s3cret', challenge));
    expect((await c.read(4)).readUInt32BE(0)).toBe(0);
    c.send([1]);
    expect((await c.read(24)).readUInt16BE(0)).toBe(640);
  });

  it('tells a wrong answer "authentication failed" and closes; a client choosing None is refused', async () => {
    const f = await start('s3cret');
    const c = await open(f.port);
    await c.read(12);
    c.send('RFB 003.008\n');
    await c.read(2);
    c.send([2]);
    c.send(vncAuthResponse('guess', await c.read(16)));
    const res = await c.read(8);
    expect(res.readUInt32BE(0)).toBe(1);
    expect((await c.read(res.readUInt32BE(4))).toString()).toBe('authentication failed');
    expect(await c.closedWithin()).toBe(true);
    expect(f.warnings.join('\n')).toContain('VNC authentication failed');

    const d = await open(f.port);
    await d.read(12);
    d.send('RFB 003.008\n');
    await d.read(2);
    d.send([1]);
    expect((await d.read(4)).readUInt32BE(0)).toBe(1);
    expect(await d.closedWithin()).toBe(true);
  });

  it('names the type to a 3.3 client and sends it the challenge and a SecurityResult', async () => {
    const { port } = await start('pw');
    const c = await open(port);
    await c.read(12);
    c.send('RFB 003.003\n');
    expect((await c.read(4)).readUInt32BE(0)).toBe(2);
    c.send(vncAuthResponse('pw', await c.read(16)));
    expect((await c.read(4)).readUInt32BE(0)).toBe(0);
  });

  it.skipIf(!existsSync(VNCSNAPSHOT))('lets vncsnapshot in with the right password file, and not with a wrong one', async () => {
    const { port } = await start('s3cret');
    const display = port - 5900;
    expect(display).toBeGreaterThan(0); // an ephemeral port, named to vncsnapshot as a display
    const passwdFile = (pw: string): string => {
      const f = join(dir, `passwd-${pw}`);
      // vncpasswd: the password, zero-padded to 8 bytes, DES-encrypted with the fixed key.
      writeFileSync(f, desEncrypt(vncDesKey(VNCPASSWD_FIXED_KEY), Buffer.concat([Buffer.from(pw), Buffer.alloc(8)]).subarray(0, 8)));
      return f;
    };
    const run = (pw: string): Promise<number | null> => new Promise((res) => {
      const child = spawn(VNCSNAPSHOT, ['-quiet', '-passwd', passwdFile(pw), `127.0.0.1:${display}`, join(dir, `${pw}.jpg`)], { stdio: 'ignore' });
      const t = setTimeout(() => child.kill(), 10_000);
      child.on('exit', (code) => {
        clearTimeout(t);
        res(code);
      });
    });
    expect(await run('s3cret')).toBe(0);
    expect(existsSync(join(dir, 's3cret.jpg'))).toBe(true);
    expect(await run('wrong')).not.toBe(0);
  });
});
