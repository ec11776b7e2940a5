/**
 * xl's scheduling output, column for column as tools/xl/xl_vcpu.c,
 * xl_sched.c, xl_cpupool.c and tools/xentop/xentop.c print it.
 */
import { describe, expect, it } from 'vitest';
import type { DomainInfo, VcpuInfo } from '@xenbox/abi';
import { formatVcpuList, formatVcpuRow, parseVcpuArg } from '../src/xl/vcpu.js';
import { credit2Header, credit2PoolLine, credit2Row, rtdsHeader, rtdsPoolLine, rtdsRow, rtdsVcpuHeader, rtdsVcpuRow } from '../src/xl/sched.js';
import { cpupoolConfig, formatCpupoolList } from '../src/xl/cpupool.js';
import { formatTop, topHeader, xentopState } from '../src/xl/top.js';
import { settingString } from '../src/xlcfg/typed-values.js';

const vcpu = (over: Partial<VcpuInfo>): VcpuInfo => ({ domid: 3, vcpu: 0, online: true, state: 'running', cpu: 1, cpuTimeNs: 12_345_000_000, hard: [0, 1, 2, 3], soft: [0, 1, 2, 3], ...over });

describe('xl vcpu-list', () => {
  it('prints the header and a running vCPU as print_vcpuinfo() does', () => {
    expect(formatVcpuList([vcpu({})], new Map([[3, 'spin']]), 4)).toBe(
      'Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n' +
        'spin                                 3     0    1   r--      12.3  all / all\n',
    );
  });

  it('marks blocked and offline vCPUs, and prints affinity ranges', () => {
    expect(formatVcpuRow('hello', vcpu({ vcpu: 1, state: 'blocked', hard: [1], soft: [0, 2, 3] }), 4)).toBe('hello                                3     1    1   -b-      12.3  1 / 0,2-3\n');
    expect(formatVcpuRow('hello', vcpu({ vcpu: 2, online: false, state: 'offline', cpuTimeNs: 0 }), 4)).toBe('hello                                3     2    -   --p       0.0  all / all\n');
    expect(formatVcpuRow('hello', vcpu({ state: 'runnable', cpu: -1, hard: [2, 3] }), 4)).toBe('hello                                3     0    2   ---      12.3  2-3 / all\n');
  });

  it('takes a vCPU number or "all", as main_vcpupin()', () => {
    expect(parseVcpuArg('2', false)).toBe(2);
    expect(parseVcpuArg('all', false)).toBe('all');
    expect(() => parseVcpuArg('x', false)).toThrow('Error: Invalid argument x as VCPU.');
    expect(() => parseVcpuArg('all', true)).toThrow("Error: --force and 'all' as VCPU not allowed.");
  });
});

describe('xl sched-credit2 / sched-rtds', () => {
  it('prints credit2 pools, header and rows', () => {
    expect(credit2PoolLine('Pool-0', 1000)).toBe('Cpupool Pool-0: ratelimit=1000us\n');
    expect(credit2Header()).toBe('Name                                ID Weight  Cap\n');
    expect(credit2Row('Domain-0', 0, 256, 0)).toBe('Domain-0                             0    256    0\n');
  });

  it('prints rtds per domain and per vCPU', () => {
    const p = { vcpu: 1, period: 10000, budget: 4000, extratime: true };
    expect(rtdsPoolLine('rt')).toBe('Cpupool rt: sched=RTDS\n');
    expect(rtdsHeader()).toBe('Name                                ID    Period    Budget  Extratime\n');
    expect(rtdsRow('guest', 5, p)).toBe('guest                                5     10000      4000        yes\n');
    expect(rtdsVcpuHeader()).toBe('Name                                ID VCPU    Period    Budget  Extratime\n');
    expect(rtdsVcpuRow('guest', 5, { ...p, extratime: false })).toBe('guest                                5    1     10000      4000         no\n');
  });
});

describe('xl cpupool-list', () => {
  const pools = [
    { poolid: 0, name: 'Pool-0', sched: 'credit2' as const, cpus: [0, 1], domains: [4, 5] },
    { poolid: 1, name: 'rt', sched: 'rtds' as const, cpus: [2, 3, 5], domains: [] },
  ];
  it('prints counts', () => {
    expect(formatCpupoolList(pools, false)).toBe(
      'Name               CPUs   Sched     Active   Domain count\nPool-0               2   credit2       y          2\nrt                   3      rtds       y          0\n',
    );
  });
  it('prints CPU lists with -c', () => {
    expect(formatCpupoolList(pools, true)).toBe('Name               CPU list\nPool-0             0,1\nrt                 2,3,5\n');
  });
  it('reads cpupool-create KEY=VALUE settings, quoted or bare', () => {
    const c = cpupoolConfig(undefined, ['name="p1"', 'sched=rtds', 'cpus=2-3']);
    expect(settingString(c.settings.get('name')!)).toBe('p1');
    expect(settingString(c.settings.get('sched')!)).toBe('rtds');
    expect(settingString(c.settings.get('cpus')!)).toBe('2-3');
    expect(c.source).toBe('command line');
  });
});

describe('xl top (one xentop batch)', () => {
  const dom = (over: Partial<DomainInfo>): DomainInfo => ({
    domid: 4, name: 'spin', uuid: '', kind: 'pvh', target: null, connections: 0, paused: false, dying: false, shutdown: null, createdAt: 0, flags: [],
    totPages: 4096, maxPages: 4096, grantFrames: 0, evtchnPorts: 0, maxVcpus: 1, vcpusOnline: 1, cpuTimeNs: 5_000_000_000, state: 'r-----', shutdownCode: null, ...over,
  });

  it("prints xentop's header", () => {
    expect(topHeader()).toBe(
      '      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID\n',
    );
  });

  it('prints a row with CPU(%) between two samples, sorted by name', () => {
    const out = formatTop({ domains: [dom({ cpuTimeNs: 4_500_000_000 })], totalKiB: 1_048_576 }, { domains: [dom({}), dom({ domid: 0, name: 'Domain-0', state: '-b----', cpuTimeNs: 0 })], totalKiB: 1_048_576 }, 1_000_000);
    const [, first, second] = out.split('\n');
    expect(first).toBe('  Domain-0 --b---          0    0.0      16384    1.6      16384       1.6     1    0        0        0    0        0        0        0          0          0    0');
    expect(second).toBe('      spin -----r          5   50.0      16384    1.6      16384       1.6     1    0        0        0    0        0        0        0          0          0    0');
  });

  it("orders the state letters as xentop: d s b c p r", () => {
    expect(xentopState(dom({ shutdown: 'crash', state: '---sc-' }))).toBe('---c--');
    expect(xentopState(dom({ shutdown: 'poweroff', paused: true, state: '--ps--' }))).toBe('-s--p-');
    expect(xentopState(dom({ dying: true, state: '-----d' }))).toBe('d-----');
  });
});

describe('the stack config hypervisor.pcpus', () => {
  it('is passed to the hypervisor as --pcpus', async () => {
    const { parseStackConfig } = await import('../src/supervisor/stack-config.js');
    const { coreServiceSpecs } = await import('../src/supervisor/programs.js');
    const c = parseStackConfig({ hypervisor: { pcpus: 2 } });
    expect(c.hypervisor).toEqual({ pcpus: 2 });
    expect(coreServiceSpecs('/run', c)[0]!.argv).toEqual(['--run-dir', '/run', '--pcpus', '2']);
    expect(coreServiceSpecs('/run', parseStackConfig({}))[0]!.argv).toEqual(['--run-dir', '/run']);
  });

  it.each([
    [{ hypervisor: { pcpus: 0 } }, 'hypervisor.pcpus: must be an integer from 1 to 256'],
    [{ hypervisor: { pcpus: 1.5 } }, 'hypervisor.pcpus: must be an integer from 1 to 256'],
    [{ hypervisor: { cpus: 2 } }, "hypervisor: unknown key 'cpus'"],
    [{ hypervisor: 2 }, 'hypervisor: must be an object'],
  ])('refuses %j naming the field', async (cfg, msg) => {
    const { parseStackConfig } = await import('../src/supervisor/stack-config.js');
    expect(() => parseStackConfig(cfg)).toThrow(msg);
  });
});
