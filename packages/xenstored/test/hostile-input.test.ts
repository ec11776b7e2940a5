/**
 * Hostile and broken input: xenstored answers with an error or drops the
 * offending connection, and keeps serving everyone else (DESIGN §12).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import { XS, encodeXsMessage, ipcEndpoint, runDirLayout } from '@xenbox/abi';
import { RawSocket, startXenstored, type TestStack } from './helpers.js';

describe('hostile input', () => {
  let s: TestStack;
  let raw: RawSocket;
  beforeEach(async () => {
    s = await startXenstored();
    await s.dom0.write('/still/here', 'yes');
    raw = await RawSocket.open(s.socketPath);
  });
  afterEach(async () => {
    raw.close();
    await s.close();
  });

  const othersStillServed = async () => expect(await s.dom0.read('/still/here')).toBe('yes');

  it('a payload longer than 4096 bytes closes that connection only', async () => {
    const hdr = Buffer.alloc(16);
    hdr.writeUInt32LE(XS.WRITE, 0);
    hdr.writeUInt32LE(4097, 12);
    raw.send(hdr);
    expect(await raw.message()).toBeNull();
    await othersStillServed();
  });

  it('an unknown message type is ENOSYS', async () => {
    raw.request(999, 'x\0', 11);
    const m = (await raw.message())!;
    expect(m.hdr).toMatchObject({ type: XS.ERROR, reqId: 11 });
    expect(m.payload).toBe('ENOSYS\0');
    raw.request(XS.WATCH_EVENT, '/a\0t\0', 12);
    expect((await raw.message())!.payload).toBe('ENOSYS\0');
    await othersStillServed();
  });

  it('a path without its NUL is EINVAL', async () => {
    raw.request(XS.READ, '/still/here', 5);
    expect((await raw.message())!.payload).toBe('EINVAL\0');
    raw.request(XS.WRITE, '/no-nul-at-all', 6);
    expect((await raw.message())!.payload).toBe('EINVAL\0');
  });

  it('invalid paths are EINVAL', async () => {
    for (const p of ['/a//b', '/a/', 'bad char!', '', '@introduceDomain'.padEnd(4000, 'x')]) {
      raw.request(XS.READ, `${p}\0`);
      expect((await raw.message())!.payload).toBe('EINVAL\0');
    }
    raw.request(XS.DIRECTORY, '@introduceDomain\0');
    expect((await raw.message())!.payload).toBe('EINVAL\0');
  });

  it('a header promising more bytes than follow just waits; the next header is read from the promised offset', async () => {
    // len says 10, 4 bytes follow: the message completes only when 6 more arrive.
    const h = encodeXsMessage(XS.READ, 1, 0, Buffer.from('/still/here\0'));
    h.writeUInt32LE(10, 12);
    raw.send(h.subarray(0, 20));
    await expect(raw.message(200)).rejects.toThrow('timed out');
    raw.send(Buffer.from('/here\0'));
    // The payload is now "/sti" + "/here\0": a valid path that does not exist.
    expect((await raw.message())!.payload).toBe('ENOENT\0');
    await othersStillServed();
  });

  it('garbage bytes get errors or a closed connection, never a dead daemon', async () => {
    const junk = Buffer.alloc(4096);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) & 0xff;
    raw.send(junk);
    await new Promise((r) => setTimeout(r, 100));
    await othersStillServed();
  });

  it('requests in a transaction id that does not exist are ENOENT', async () => {
    raw.request(XS.READ, '/still/here\0', 3, 12345);
    expect((await raw.message())!.payload).toBe('ENOENT\0');
  });

  it('ZeroMQ: unauthenticated requests are EACCES, broken frames are EINVAL, the daemon carries on', async () => {
    const d = new Dealer({ linger: 0 });
    d.connect(ipcEndpoint(runDirLayout(s.runDir).xenstoredZmqSocket));
    try {
      await d.send(encodeXsMessage(XS.READ, 9, 0, Buffer.from('/still/here\0')));
      const [reply] = await d.receive();
      expect(reply!.readUInt32LE(0)).toBe(XS.ERROR);
      expect(reply!.toString('latin1', 16)).toBe('EACCES\0');
      await d.send(Buffer.from('not a message at all, just bytes'));
      const [err] = await d.receive();
      expect(err!.toString('latin1', 16)).toBe('EINVAL\0');
      await d.send(encodeXsMessage(0x10000, 1, 0, Buffer.from('0\0guess\0')));
      const [auth] = await d.receive();
      expect(auth!.toString('latin1', 16)).toBe('EACCES\0');
    } finally {
      d.close();
    }
    await othersStillServed();
  });
});
