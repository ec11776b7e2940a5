import { describe, expect, it } from 'vitest';
import { nicDefaults, nicToLibxlJson, parseNicArgs, parseVifRate, parseVifSpec } from '../../src/xlcfg/vif-spec.js';

/** `xl -N network-attach 0 ARGS...`: the printed text, or the error. */
function networkAttachDryRun(args: string[]): { out: string } | { error: string } {
  try {
    return { out: nicToLibxlJson(parseNicArgs(args).nic) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

const rate = (bytes: number, usecs: number): string => `vif: {\n    "rate_bytes_per_interval": ${bytes},\n    "rate_interval_usecs": ${usecs}\n}\n\n`;
const R100k = rate(100000, 50000);
const R100 = rate(100, 50000);
const R50M = rate(50000000, 50000);
const R10M_1s = rate(10000000, 1000000);

// tools/xl/check-xl-vif-parse, all 44 cases, then the 5 derived from the man page.
const VECTORS: Array<[number, string, string | null]> = [
  [1, 'foo', null],
  [2, 'rate=foo', null],
  [3, 'rate=foo', null],
  [4, 'rate=10MB', null],
  [5, 'rate=10MB/m', null],
  [6, 'rate=10ZB', null],
  [7, 'rate=10ZB/s', null],
  [8, 'rate=10ZB/m', null],
  [9, 'rate=16000000b/s', R100k],
  [10, 'rate=16000000b/s@50ms', R100k],
  [11, 'rate=2000000B/s', R100k],
  [12, 'rate=2000000B/s@50ms', R100k],
  [13, 'rate=16Kb/s', R100],
  [14, 'rate=16Kb/s@50ms', R100],
  [15, 'rate=2KB/s', R100],
  [16, 'rate=2KB/s@50ms', R100],
  [17, 'rate=16Mb/s', R100k],
  [18, 'rate=16Mb/s@50ms', R100k],
  [19, 'rate=2MB/s', R100k],
  [20, 'rate=2MB/s@50ms', R100k],
  [21, 'rate=8Gb/s', R50M],
  [22, 'rate=8Gb/s@50ms', R50M],
  [23, 'rate=1GB/s', R50M],
  [24, 'rate=1GB/s@50ms', R50M],
  [25, 'rate=4294967296b/s', null],
  [26, 'rate=4294967296Kb/s', null],
  [27, 'rate=4294967296Mb/s', null],
  [28, 'rate=4294967296Gb/s', null],
  [29, 'rate=0B/s', null],
  [30, 'rate=10Mb/s@foo', null],
  [31, 'rate=10Mb/s@10h', null],
  [32, 'rate=10MB/s@foo', null],
  [33, 'rate=10MB/s@10h', null],
  [34, 'rate=80Mb/s@1s', R10M_1s],
  [35, 'rate=10MB/s@1s', R10M_1s],
  [36, 'rate=1B/s@4294967296us', null],
  [37, 'rate=1B/s@4294968ms', null],
  [38, 'rate=1B/s@4295s', null],
  [39, 'rate=1B/s@0us', null],
  [40, 'rate=4294967295GB/s@5us', null],
  [41, 'rate=4296MB/s@4294s', null],
  [42, 'rate=@', null],
  [43, 'trusted', 'vif: {\n    "trusted": "True"\n}\n\n'],
  [44, 'untrusted', 'vif: {\n    "trusted": "False"\n}\n\n'],
  // derived from xl-network-configuration(5)
  [45, 'rate=1MB/s@20ms', rate(20000, 20000)],
  [46, 'rate=10Mb/s', rate(62500, 50000)],
  [47, 'rate=250KB/s', rate(12500, 50000)],
  [48, 'type=bogus', null],
  [49, 'mac=00:16:3e:zz:00:00', null],
];

describe('vif specs: the upstream vectors of check-xl-vif-parse (1-44) and the derived ones (45-49)', () => {
  it.each(VECTORS)('case %i: %s', (_n, arg, expected) => {
    const r = networkAttachDryRun([arg]);
    if (expected === null) expect(r).toHaveProperty('error');
    else expect(r).toEqual({ out: expected });
  });
});

describe('vif rate errors say what was wrong, as libxlu_vif.c does', () => {
  it.each([
    ['10MB', 'invalid rate in `10MB\''],
    ['4294967296b/s', 'rate overflow in `4294967296b/s\''],
    ['0B/s', 'rate overflow in `0B/s\''],
    ['10Mb/s@10h', "invalid replenishment interval in `10h'"],
    ['1B/s@4295s', "replenishment interval overflow in `4295s'"],
    ['1B/s@0us', "replenishment interval overflow in `0us'"],
    ['4294967295GB/s@5us', "rate overflow in `4294967295GB/s@5us'"],
    ['@', "no rate specified in `@'"],
    ['', "no rate specified in `'"],
  ])('rate=%s: %s', (r, msg) => {
    expect(() => parseVifRate(r)).toThrow(`command line: config parsing error in vif: ${msg}`);
  });

  it('reads a leading 0 as octal, as strtoull(.., 0) does', () => {
    expect(parseVifRate('010B/s@1s')).toEqual({ bytesPerInterval: 8n, intervalUsecs: 1000000 });
  });

  it('takes interval units m and u without the s', () => {
    expect(parseVifRate('1MB/s@20m').intervalUsecs).toBe(20000);
    expect(parseVifRate('1MB/s@100u').intervalUsecs).toBe(100);
    expect(parseVifRate('1MB/s@2').intervalUsecs).toBe(2000000);
  });
});

describe('vif specs in a config: every key of xl-network-configuration(5)', () => {
  it('parses the seed HVM vif', () => {
    const { nic } = parseVifSpec('mac=00:16:3e:aa:bb:cc,bridge=xenbr0');
    expect(nic).toMatchObject({ mac: [0x00, 0x16, 0x3e, 0xaa, 0xbb, 0xcc], bridge: 'xenbr0' });
    expect(nicToLibxlJson(nic)).toBe('vif: {\n    "mac": "00:16:3e:aa:bb:cc",\n    "bridge": "xenbr0"\n}\n\n');
  });

  it('parses all the settings into libxl fields, printed in IDL order', () => {
    const { nic } = parseVifSpec(
      'bridge=br1, ip=10.0.1.1 10.0.1.2,mac=AA:00:00:12:23:34,type=ioemu,model=e1000,vifname=web0,script=vif-route,backend=netdrv,rate=10Mb/s,mtu=9000,devid=3,gatewaydev=eth0,vlan=10p/20,untrusted',
    );
    expect(nicToLibxlJson(nic)).toBe(
      'vif: {\n' +
        [
          '"backend_domname": "netdrv"', '"devid": 3', '"mtu": 9000', '"vlan": "10p/20"', '"model": "e1000"', '"mac": "aa:00:00:12:23:34"',
          '"ip": "10.0.1.1 10.0.1.2"', '"bridge": "br1"', '"ifname": "web0"', '"script": "vif-route"', '"nictype": "vif_ioemu"',
          '"rate_bytes_per_interval": 62500', '"rate_interval_usecs": 50000', '"gatewaydev": "eth0"', '"trusted": "False"',
        ].map((l) => `    ${l}`).join(',\n') +
        '\n}\n\n',
    );
  });

  it('an empty spec is a NIC with every default', () => {
    expect(parseVifSpec('').nic).toEqual({ colo: {} });
    expect(nicToLibxlJson(parseVifSpec('').nic)).toBe('vif: {\n}\n\n');
  });

  it('skips empty pieces and leading spaces, as strtok does', () => {
    expect(parseVifSpec(',, bridge=xenbr1,,').nic.bridge).toBe('xenbr1');
  });

  it('netdev= is the deprecated gatewaydev=, with a warning', () => {
    const r = parseVifSpec('netdev=eth1');
    expect(r.nic.gatewaydev).toBe('eth1');
    expect(r.warnings).toEqual(['the netdev parameter is deprecated, please use gatewaydev instead']);
  });

  it('accel= is accepted with a warning and ignored', () => {
    expect(parseVifSpec('accel=foo').warnings).toEqual(['the accel parameter for vifs is currently not supported']);
  });

  it('takes the COLO settings into their libxl fields', () => {
    expect(parseVifSpec('forwarddev=eth2,colo_compare_out=c0').nic.colo).toEqual({ coloft_forwarddev: 'eth2', colo_compare_out: 'c0' });
  });

  it.each([
    ['colour=blue', "unrecognized argument `colour=blue'"],
    ['bridge', "unrecognized argument `bridge'"],
    ['type=bogus', "Invalid parameter `type'."],
    ['mac=00:16:3e:zz:00:00', "Invalid parameter `mac'."],
    ['mac=00:16:3e:aa:bb', "Invalid parameter `mac'."],
    ['mac=00:16:3e:aa:bb:1ff', "Invalid parameter `mac'."],
    ['mtu=big', 'failed to convert "big" to number'],
    ['devid=', 'failed to convert "" to number'],
  ])('%s is refused: %s', (spec, msg) => {
    expect(() => parseVifSpec(spec)).toThrow(msg);
  });

  it('network-attach passes each argv word whole: a comma is part of the value', () => {
    expect(parseNicArgs(['bridge=a,b']).nic.bridge).toBe('a,b');
  });

  it('libxl fills the defaults when the NIC is added: xenbr0, 00:16:3e:..., vif<domid>.<devid>', () => {
    const n = nicDefaults(parseVifSpec('').nic, { domid: 7, devid: 1, hvm: false, randomMacTail: [1, 2, 3] });
    expect(n).toMatchObject({ bridge: 'xenbr0', mac: [0, 0x16, 0x3e, 1, 2, 3], mtu: 1500, nictype: 'vif', ifname: 'vif7.1', script: 'vif-bridge', devid: 1 });
    expect(nicDefaults(parseVifSpec('').nic, { domid: 7, devid: 0, hvm: true, randomMacTail: [1, 2, 3] }).nictype).toBe('vif_ioemu');
  });
});
