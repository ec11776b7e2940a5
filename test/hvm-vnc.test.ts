/**
 * An HVM guest's VNC console end to end (issue 9 item 6): `vnc = 1` with a
 * `vncdisplay` in an xl config makes the guest's device model serve RFB 3.8
 * on 5900 + display, showing Debian's U-Boot's serial console as an 80×25
 * text screen.  A hand-written RFB client checks the handshake bytes and
 * types into U-Boot with KeyEvents (the answers appear in the xenconsoled
 * log); Debian's vncsnapshot, a real client, saves a JPEG in which the
 * U-Boot prompt is legible: larger than the JPEG of a blank screen, and —
 * when libjpeg-turbo's djpeg is installed — read back to text with the
 * device model's own font.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDirLayout } from '@xenbox/abi';
import { RfbServer, TextScreen, XK, listenVnc } from '../packages/stubdom/dist/index.js';
import { TestStack } from './helpers/stack.js';
import { UBOOT, hvmConfig, until } from './helpers/uboot.js';
import { REPO } from './helpers/paths.js';
import { RawClient } from './helpers/rfb-client.js';
import { DJPEG, decodeJpeg, inkPixels, recogniseText } from './helpers/vnc-picture.js';

const VNCSNAPSHOT = '/usr/bin/vncsnapshot';
const XL_BIN = resolve(REPO, 'packages/dom0/bin/xl.js');
const haveUboot = existsSync(UBOOT);
/** A high display, away from anything a person runs (5900 + 100..899). */
const DISPLAY = 100 + Math.floor(Math.random() * 800);

let stack: TestStack;
const clients: RawClient[] = [];
const servers: RfbServer[] = [];

const config = (name: string, lines: Record<string, string | number> = {}): string => hvmConfig(stack.runDir, name, lines);


const consoleLog = (name: string): string => {
  const f = runDirLayout(stack.runDir).consoleLog(name);
  return existsSync(f) ? readFileSync(f).toString('latin1') : '';
};

/** Type a string as KeyEvents (press and release), Return for '\r'. */
function typeKeys(c: RawClient, text: string): void {
  for (const ch of text) {
    const keysym = ch === '\r' ? XK.Return : ch.charCodeAt(0);
    c.key(true, keysym);
    c.key(false, keysym);
  }
}

/** `xl ARGS` against the stack with extra environment (PATH for the viewer). */
function runXl(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [XL_BIN, ...args], { env: { ...process.env, XENBOX_RUN_DIR: stack.runDir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Run vncsnapshot (asynchronously: the blank-screen server lives in this process). */
function snapshot(display: number, file: string, extra: string[] = []): Promise<{ status: number | null; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(VNCSNAPSHOT, ['-quiet', ...extra, `127.0.0.1:${display}`, file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill(), 20_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr, ms: performance.now() - t0 });
    });
  });
}

beforeAll(async () => {
  if (!haveUboot) return;
  stack = await TestStack.up('hvm-vnc');
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.sock.destroy();
  for (const s of servers) await s.close();
  await stack?.destroy();
}, 60_000);

describe.skipIf(!haveUboot)(`an HVM guest's VNC console (vnc = 1, vncdisplay = ${DISPLAY}; skipped without u-boot-qemu)`, () => {
  let display = 0;
  let port = 0;

  it('xl create starts the device model listening on 127.0.0.1:5900 + vncdisplay (the next free display with vncunused), and says where', async () => {
    const r = await stack.xl('create', config('vnc1', { vnc: 1, vncdisplay: DISPLAY }));
    expect(r.code, r.stderr).toBe(0);
    const m = /vnc: 127\.0\.0\.1:(\d+) \(display (\d+)\)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    port = Number(m![1]);
    display = Number(m![2]);
    expect(port).toBe(5900 + display);
    expect(display).toBeGreaterThanOrEqual(DISPLAY);
    expect(display).toBeLessThanOrEqual(DISPLAY + 99);
  }, 30_000);

  it('speaks RFB 3.8 to a hand-written client, and its KeyEvents reach U-Boot through the UART', async () => {
    const c = await RawClient.open(port);
    clients.push(c);
    const init = await c.handshake(8);
    expect(init).toMatchObject({ width: 640, height: 400, name: 'vnc1' });
    expect([...init.format]).toEqual([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);

    await until('the autoboot countdown', () => consoleLog('vnc1').includes('Hit any key to stop autoboot'), 45_000);
    typeKeys(c, '\r'); // stops autoboot, as a key press in `xl console` does
    await until('the prompt', () => /=> $/.test(consoleLog('vnc1')));
    const before = consoleLog('vnc1').length;
    typeKeys(c, 'version\r');
    await until('the answer to `version` typed over VNC', () => /U-Boot 2023\.01[^]*=> $/.test(consoleLog('vnc1').slice(before)));

    // The screen shows it too: a full update has lit pixels in the prompt's row.
    c.updateRequest(false);
    const [rect] = await c.update();
    expect(rect).toMatchObject({ x: 0, y: 0, w: 640, h: 400, encoding: 0 });
    const lit = Array.from({ length: 640 * 400 }, (_, i) => rect!.pixels.readUInt32LE(i * 4)).filter((p) => p !== 0).length;
    expect(lit).toBeGreaterThan(1000);
    c.sock.destroy();
  }, 90_000);

  it('drops hostile VNC clients with the reason in the device model log, and goes on serving the guest', async () => {
    const bad = await RawClient.open(port);
    clients.push(bad);
    await bad.read(12);
    bad.send('GET / HTTP/1.1\r\n');
    expect(await bad.closedWithin()).toBe(true);
    const huge = await RawClient.open(port);
    clients.push(huge);
    await huge.handshake();
    huge.send([6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]); // ClientCutText of 4 GiB
    expect(await huge.closedWithin()).toBe(true);
    const dmLog = (): string => readFileSync(runDirLayout(stack.runDir).logFile('vnc1-dm'), 'utf8');
    await until('both reasons in vnc1-dm.log', () => dmLog().includes('bad ProtocolVersion') && dmLog().includes('ClientCutText of 4294967295 bytes'));

    const c = await RawClient.open(port);
    clients.push(c);
    await c.handshake();
    const before = consoleLog('vnc1').length;
    typeKeys(c, 'echo still here\r');
    await until('U-Boot answering after the hostile clients', () => consoleLog('vnc1').slice(before).includes('still here\r\n=> '));
    c.sock.destroy();
  }, 30_000);

  it.skipIf(!existsSync(VNCSNAPSHOT))('vncsnapshot captures a JPEG in which the U-Boot prompt is legible', async () => {
    // A blank screen's JPEG, from a server with nothing written, for scale.
    const blank = new RfbServer({ screen: new TextScreen(), name: 'blank', onKeyboard: () => undefined });
    servers.push(blank);
    const ep = await listenVnc(blank, { display: DISPLAY + 100, findUnused: true });
    const blankFile = join(stack.runDir, 'blank.jpg');
    const b = await snapshot(ep.display, blankFile, ['-allowblank']);
    expect(b.status, b.stderr).toBe(0);

    const file = join(stack.runDir, 'vnc1.jpg');
    const s = await snapshot(display, file);
    expect(s.status, s.stderr).toBe(0);
    const jpeg = readFileSync(file);
    expect([...jpeg.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]); // SOI and a marker
    expect([...jpeg.subarray(-2)]).toEqual([0xff, 0xd9]); // EOI
    if (process.env.XENBOX_KEEP_SNAPSHOT) writeFileSync(process.env.XENBOX_KEEP_SNAPSHOT, jpeg);
    const size = statSync(file).size;
    const blankSize = statSync(blankFile).size;
    console.log(`vncsnapshot: ${size} bytes for the U-Boot screen (${s.ms.toFixed(0)} ms), ${blankSize} bytes for a blank one; djpeg ${DJPEG ? 'present: text read back' : 'absent: size check only'}`);
    expect(size).toBeGreaterThan(blankSize * 3);

    const picture = decodeJpeg(file);
    if (picture) {
      expect([picture.width, picture.height]).toEqual([640, 400]);
      expect(inkPixels(decodeJpeg(blankFile)!)).toBe(8 * 2); // a blank screen shows only the cursor's underline
      const lines = recogniseText(picture);
      const text = lines.join('\n');
      expect(text).toContain('U-Boot 2023.01');
      expect(lines.filter((l) => l.length).pop()).toBe('=>');
    }
  }, 60_000);

  it('xl vncviewer runs the `vncviewer` in PATH on LISTEN:DISPLAY, and without one says where the console is', async () => {
    const bin = join(stack.runDir, 'fake-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'vncviewer'), '#!/bin/sh\necho "viewer $*"\nexit 3\n', { mode: 0o755 });
    const r = await runXl(['vncviewer', 'vnc1'], { PATH: `${bin}:${process.env.PATH}` });
    expect(r.stdout).toBe(`viewer 127.0.0.1:${display}\n`);
    expect(r.code).toBe(3); // the viewer's status
    const none = await runXl(['vncviewer', 'vnc1'], { PATH: join(stack.runDir, 'empty-bin') });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`no vncviewer in PATH; vnc1's vnc: 127.0.0.1:${port} (display ${display})`);
    const dom0 = await runXl(['vncviewer', '0'], {});
    expect(dom0.stderr).toContain('Domain-0 has no VNC console');
  }, 30_000);

  it('ends its VNC server with the guest', async () => {
    expect((await stack.xl('destroy', 'vnc1')).code).toBe(0);
    await until('the VNC port closed', async () => {
      const c = await RawClient.open(port).catch(() => null);
      c?.sock.destroy();
      return c === null;
    });
  }, 30_000);
});
