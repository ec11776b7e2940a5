import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PCAP_MAGIC, parseNetifRate } from '@xenbox/abi';
import { CreditLimiter, PcapWriter, completeChecksum, netbackConfigFromArgs, onesSum } from '@xenbox/netback';

describe('rate= credit (Linux tx_credit_exceeded / tx_add_credit)', () => {
  it('lets credit_bytes through per window, makes a packet over the credit wait for the next window, and adds one window of credit after an idle spell', () => {
    let now = 0;
    const c = new CreditLimiter(10_000, 100_000, () => now);
    expect(c.take(6000)).toBe(0);
    expect(c.take(6000)).toBe(100_000); // 4000 left: wait for the window's end
    now = 100_000;
    expect(c.take(6000)).toBe(0);
    now = 100_000_000; // long idle: what was left plus one window, not 1000 windows' worth (tx_add_credit runs once)
    let passed = 0;
    while (c.take(1000) === 0) passed += 1000;
    expect(passed).toBe(8000 + 10_000);
  });

  it('parses the rate key as libxl writes it', () => {
    expect(parseNetifRate('12500,50000')).toEqual({ bytes: 12500, usecs: 50000 });
    expect(parseNetifRate('12500')).toBeNull();
    expect(parseNetifRate('0,50000')).toBeNull();
    expect(parseNetifRate('x,y')).toBeNull();
  });
});

describe('pcap capture', () => {
  it('writes the libpcap global header and a record per frame, flushed on demand', () => {
    const file = join(mkdtempSync('/tmp/xb-pcap-'), 'br.pcap');
    const w = new PcapWriter(file);
    w.capture(new Uint8Array(60).fill(7));
    w.flush();
    const b = readFileSync(file);
    expect(b.readUInt32LE(0)).toBe(PCAP_MAGIC);
    expect([b.readUInt16LE(4), b.readUInt16LE(6), b.readUInt32LE(20)]).toEqual([2, 4, 1]);
    expect(b.length).toBe(24 + 16 + 60);
    expect([b.readUInt32LE(24 + 8), b.readUInt32LE(24 + 12)]).toEqual([60, 60]);
    w.close();
    rmSync(dirname(file), { recursive: true, force: true });
  });
});

describe('netback arguments', () => {
  it('takes bridges and captures, relative paths from the run dir, and refuses what it does not know', () => {
    const cfg = netbackConfigFromArgs({ bridges: ['xenbr0', 'xenbr1'], pcapDir: 'cap', pcap: { xenbr1: '/tmp/one.pcap' } }, '/run/x');
    expect(cfg.bridges).toEqual(['xenbr0', 'xenbr1']);
    expect(Object.fromEntries(cfg.pcap)).toEqual({ xenbr0: '/run/x/cap/xenbr0.pcap', xenbr1: '/tmp/one.pcap' });
    expect(netbackConfigFromArgs({}, '/r').bridges).toEqual(['xenbr0']);
    expect(() => netbackConfigFromArgs({ pcap: { xenbr9: 'f' } }, '/r')).toThrow(/xenbr9.*not one of this netback's bridges/);
    expect(() => netbackConfigFromArgs({ bridge: 'x' }, '/r')).toThrow(/unknown argument 'bridge'/);
    expect(() => netbackConfigFromArgs({ bridges: ['a-very-long-bridge-name'] }, '/r')).toThrow(/interface names/);
  });
});

describe('checksum completion for a frontend without checksum offload', () => {
  it('fills in a UDP checksum left blank (pseudo-header sum only)', () => {
    const f = new Uint8Array(14 + 20 + 8 + 4);
    f.set([0x08, 0x00], 12);
    f.set([0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
    f.set([0x30, 0x39, 0x00, 0x35, 0x00, 12, 0, 0, 1, 2, 3, 4], 34);
    // pseudo header: src, dst, proto, length
    const pseudo = onesSum(Uint8Array.from([10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 12]), 0, 12);
    f[40] = pseudo >> 8;
    f[41] = pseudo & 0xff;
    const done = completeChecksum(f)!;
    // Verify: the sum over pseudo header + UDP segment is 0xffff.
    const check = onesSum(done, 34, 46, onesSum(Uint8Array.from([10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 12]), 0, 12));
    expect(check).toBe(0xffff);
    expect(completeChecksum(new Uint8Array(60))).toBeNull(); // not IPv4
  });
});
