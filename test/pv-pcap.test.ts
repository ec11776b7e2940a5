/**
 * A pcap of two PV kernels pinging each other on xenbr0, captured by netback
 * (stack config `pcapDir`) and read by Debian's tshark: ARP, then ICMP echo
 * requests and replies between the guests' addresses.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDirLayout } from '@xenbox/abi';
import { REPO, tempRunDir } from './helpers/paths.js';
import { TestStack } from './helpers/stack.js';

const IMAGE = resolve(REPO, 'packages/guests/images/pvkernel.elf');
const haveTshark = spawnSync('tshark', ['--version']).status === 0;
let stack: TestStack;
let captures: string;
let cleanup: string | null = null;

function consoleLog(name: string): string {
  const f = runDirLayout(stack.runDir).consoleLog(name);
  return existsSync(f) ? readFileSync(f, 'latin1') : '';
}

async function printed(name: string, re: RegExp, ms = 60_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = re.exec(consoleLog(name));
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`${name} did not print ${re}; console:\n${consoleLog(name)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function create(name: string, mac: string, cmdline: string): Promise<void> {
  const cfg = join(stack.runDir, `${name}.cfg`);
  writeFileSync(cfg, `name = "${name}"\nkernel = "${IMAGE}"\nmemory = 32\nvif = [ "bridge=xenbr0,mac=${mac}" ]\ncmdline = "${cmdline}"\n`);
  const r = await stack.xl('create', cfg);
  expect(r.code, r.stderr).toBe(0);
}

beforeAll(async () => {
  // netback captures xenbr0: a stack config of our own (docs/netback.md, pcapDir).
  const tmp = tempRunDir('pcapcfg');
  captures = join(tmp, 'captures');
  const cfg = join(tmp, 'stack.json');
  writeFileSync(cfg, JSON.stringify({ autostart: null, services: [{ name: 'netback', kind: 'netback', args: { bridges: ['xenbr0'], pcapDir: captures } }, { name: 'blkback', kind: 'blkback' }] }));
  stack = await TestStack.up('pcap', ['--config', cfg]);
  cleanup = tmp;
}, 60_000);
afterAll(async () => {
  await stack?.destroy();
  if (cleanup) rmSync(cleanup, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!haveTshark)("netback's capture of guests pinging", () => {
  it('tshark reads the echo requests from 10.0.2.2 and the replies from 10.0.2.1', async () => {
    await create('cap-a', '00:16:3e:7a:00:01', 'ip=10.0.2.1 udp-echo');
    await printed('cap-a', /udp-echo: listening on 10\.0\.2\.1/);
    await create('cap-b', '00:16:3e:7a:00:02', 'ip=10.0.2.2 ping 10.0.2.1 count=3 then=shell');
    await printed('cap-b', /3 packets transmitted, 3 received/);
    const file = join(captures, 'xenbr0.pcap');
    const r = spawnSync('tshark', ['-r', file, '-Y', 'icmp', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(rows.filter((x) => x[0] === '10.0.2.2' && x[1] === '10.0.2.1' && x[2] === '8')).toHaveLength(3);
    expect(rows.filter((x) => x[0] === '10.0.2.1' && x[1] === '10.0.2.2' && x[2] === '0')).toHaveLength(3);
    const arp = spawnSync('tshark', ['-r', file, '-Y', 'arp', '-T', 'fields', '-e', 'arp.opcode'], { encoding: 'utf8' });
    expect(arp.stdout.split('\n')).toContain('1');
  }, 120_000);
});
