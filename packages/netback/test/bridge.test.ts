import { describe, expect, it } from 'vitest';
import { Bridge, Fdb, type BridgePort, type Frame } from '@xenbox/netback';

class Port implements BridgePort {
  readonly got: Uint8Array[] = [];
  constructor(readonly name: string) {}
  deliver(f: Frame): void {
    this.got.push(f.data);
  }
}

const mac = (n: number) => Uint8Array.from([0x00, 0x16, 0x3e, 0, 0, n]);
const BCAST = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
function frame(dst: Uint8Array, src: Uint8Array): Frame {
  const d = new Uint8Array(60);
  d.set(dst, 0);
  d.set(src, 6);
  return { data: d, csumBlank: false, dataValidated: false };
}

describe('the software bridge', () => {
  it('floods broadcast and unknown unicast to every other port, then sends learned unicast to one port only', () => {
    const br = new Bridge('xenbr0');
    const [a, b, c] = [new Port('a'), new Port('b'), new Port('c')];
    [a, b, c].forEach((p) => br.addPort(p));
    br.input(a, frame(BCAST, mac(1)));
    expect([a.got.length, b.got.length, c.got.length]).toEqual([0, 1, 1]);
    br.input(b, frame(mac(9), mac(2))); // unknown destination: flooded
    expect([a.got.length, b.got.length, c.got.length]).toEqual([1, 1, 2]);
    br.input(b, frame(mac(1), mac(2))); // mac(1) learned on a
    expect([a.got.length, b.got.length, c.got.length]).toEqual([2, 1, 2]);
    br.close();
  });

  it('filters a frame whose destination lives on the port it came from, and forgets a port that leaves', () => {
    const br = new Bridge('xenbr0');
    const [a, b] = [new Port('a'), new Port('b')];
    br.addPort(a);
    br.addPort(b);
    br.input(a, frame(BCAST, mac(1)));
    br.input(a, frame(mac(1), mac(3)));
    expect(b.got).toHaveLength(1);
    expect(br.filtered).toBe(1);
    br.removePort(a);
    expect(br.fdb.lookup(0x00163e000001)).toBeUndefined();
    br.close();
  });

  it('does not learn multicast source addresses; a station that moves is relearned', () => {
    const br = new Bridge('xenbr0');
    const [a, b] = [new Port('a'), new Port('b')];
    br.addPort(a);
    br.addPort(b);
    br.input(a, frame(BCAST, Uint8Array.from([0x01, 0, 0x5e, 0, 0, 1])));
    expect(br.fdb.size).toBe(0);
    br.input(a, frame(BCAST, mac(5)));
    br.input(b, frame(BCAST, mac(5)));
    expect(br.fdb.lookup(0x00163e000005)).toBe(b);
    br.close();
  });
});

describe('the forwarding database', () => {
  it('ages entries out after the ageing time', () => {
    let now = 0;
    const fdb = new Fdb(1000, () => now);
    const p = new Port('p');
    fdb.learn(7, p);
    now = 999;
    expect(fdb.lookup(7)).toBe(p);
    now = 2100;
    expect(fdb.lookup(7)).toBeUndefined();
    fdb.learn(8, p);
    now = 4000;
    fdb.age();
    expect(fdb.size).toBe(0);
  });
});
