/**
 * HVM guests end to end: `xl create` of an HVM config boots Debian's
 * unmodified U-Boot (u-boot-qemu) on the virt board, its devices emulated by
 * a `<guest>-dm` stub domain through ioreqs; the prompt shows in the console
 * log and `xl console`; keyboard input reaches U-Boot through xenconsoled;
 * `poweroff` (sysreset via the sifive test device) ends the domain per
 * on_poweroff; killing the stub domain crashes only its own guest (on_crash).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDirLayout, type IoreqServerInfo } from '@xenbox/abi';
import { HypervisorConnection } from '@xenbox/libxen';
import { TestStack } from './helpers/stack.js';
import { UBOOT, attachUboot, hvmConfig, until, type UbootConsole } from './helpers/uboot.js';

const haveUboot = existsSync(UBOOT);
let stack: TestStack;
let dom0: HypervisorConnection;
const consoles: UbootConsole[] = [];

const xl = (...args: string[]) => stack.xl(...args);

/** `xl console NAME` with a pipe for the keyboard; collects what it prints. */
function attach(name: string): UbootConsole {
  const con = attachUboot(stack.runDir, name);
  consoles.push(con);
  return con;
}

const config = (name: string, lines: Record<string, string | number> = {}): string => hvmConfig(stack.runDir, name, lines);


async function domains(): Promise<Array<{ domid: number; name: string; kind: string; target: number | null; shutdown: string | null }>> {
  return dom0.call('sysctl.getdomaininfolist', {});
}

/** The console log of a guest from byte `from` on. */
function consoleLog(name: string, from = 0): string {
  const f = runDirLayout(stack.runDir).consoleLog(name);
  return existsSync(f) ? readFileSync(f).subarray(from).toString('latin1') : '';
}
const logSize = (name: string): number => (existsSync(runDirLayout(stack.runDir).consoleLog(name)) ? statSync(runDirLayout(stack.runDir).consoleLog(name)).size : 0);

beforeAll(async () => {
  if (!haveUboot) return;
  stack = await TestStack.up('hvm');
  dom0 = await HypervisorConnection.connect({ runDir: stack.runDir, domid: 0, token: readFileSync(runDirLayout(stack.runDir).dom0Token, 'utf8').trim() });
}, 60_000);
afterAll(async () => {
  for (const c of consoles) c.close();
  await dom0?.close();
  await stack?.destroy();
}, 60_000);

describe.skipIf(!haveUboot)(`an HVM guest booting Debian's U-Boot (${UBOOT}; skipped without the u-boot-qemu package)`, () => {
  let domid = 0;
  let con: ReturnType<typeof attach>;

  it('reaches the U-Boot prompt from xl create, its devices served by a <guest>-dm stub domain', async () => {
    const t0 = performance.now();
    const r = await xl('create', config('uboot'));
    const created = performance.now() - t0;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/device model: uboot-dm \(pid \d+, stub domain \d+\)/);
    const ds = await domains();
    domid = ds.find((d) => d.name === 'uboot')!.domid;
    const dm = ds.find((d) => d.name === 'uboot-dm');
    expect(dm).toMatchObject({ kind: 'stubdom', target: domid });
    con = attach('uboot');
    const banner = await until('the U-Boot banner', () => consoleLog('uboot').includes('U-Boot 2023') && performance.now() - t0);
    await until('the autoboot countdown', () => consoleLog('uboot').includes('Hit any key to stop autoboot'));
    const countdown = performance.now() - t0;
    con.type('\r'); // stop autoboot (riscv-platform.md §3.1: U-Boot eats input while it autoboots)
    await until('the prompt', () => /=> $/.test(con.out()) || /=> $/.test(consoleLog('uboot')));
    const prompt = performance.now() - t0;
    const info: IoreqServerInfo = await dom0.call('hvm.ioreq_server.info', { domid });
    console.log(
      `HVM U-Boot: xl create ${created.toFixed(0)} ms, banner ${banner.toFixed(0)} ms, countdown ${countdown.toFixed(0)} ms, prompt ${prompt.toFixed(0)} ms; ` +
        `ioreqs: ${info.syncRequests} synchronous, ${info.bufferedWrites} posted writes in ${info.bufferedBatches} batches, ${info.localReads} reads served from the mirror`,
    );
    expect(info.server).toBe(dm!.domid);
    expect(info.localReads).toBeGreaterThan(info.syncRequests * 10);
    expect(consoleLog('uboot')).toContain('In:    serial@10000000');
    expect((await xl('dmesg')).stdout).toContain(`(d${domid}) U-Boot 2023`);
  }, 60_000);

  it('answers `version` typed through xenconsoled', async () => {
    const before = con.out().length;
    con.type('version\r');
    await until('the version answer', () => /riscv64-linux-gnu-gcc[^]*=> $/.test(con.out().slice(before)));
    expect(con.out().slice(before)).toContain('U-Boot 2023.01');
  }, 30_000);

  it('comes back from `reset` as a new domain with a new stub domain (on_reboot defaults to restart, xl.cfg(5)), and boots U-Boot again', async () => {
    const before = await domains();
    const oldDm = before.find((d) => d.name === 'uboot-dm')!.domid;
    const banners = () => consoleLog('uboot').split('U-Boot 2023').length - 1;
    const first = banners();
    con.type('reset\r');
    const again = await until('a new uboot domain', async () => {
      const ds = await domains();
      const g = ds.find((d) => d.name === 'uboot' && d.domid !== domid);
      const dm = ds.find((d) => d.name === 'uboot-dm' && d.domid !== oldDm);
      return g && dm && { g, dm };
    }, 30_000);
    expect(again.dm).toMatchObject({ kind: 'stubdom', target: again.g.domid });
    expect((await domains()).some((d) => d.domid === domid || d.domid === oldDm)).toBe(false);
    const log = readFileSync(runDirLayout(stack.runDir).logFile('xl-uboot'), 'utf8');
    expect(log).toMatch(/reason code 1: action is restart/);
    domid = again.g.domid;
    await until('U-Boot booting again', () => banners() > first, 30_000);
    con.close();
    con = attach('uboot');
    await until('the autoboot countdown again', () => con.out().includes('Hit any key to stop autoboot') || consoleLog('uboot').split('Hit any key to stop autoboot').length - 1 > first, 45_000);
    con.type('\r');
    await until('the prompt again', () => /=> $/.test(con.out()), 30_000);
  }, 120_000);

  it('powers off with `poweroff` (sysreset through the sifive test device), and the monitor destroys it and its stub domain', async () => {
    con.type('poweroff\r');
    await until('the guest and its stub domain gone', async () => !(await domains()).some((d) => d.name === 'uboot' || d.name === 'uboot-dm'));
    expect(con.out()).toContain('poweroff ...');
    const log = readFileSync(runDirLayout(stack.runDir).logFile('xl-uboot'), 'utf8');
    expect(log).toMatch(/reason code 0: action is destroy/);
    con.close();
  }, 30_000);

  it('crashes only its own guest when its stub domain dies (on_crash), while another HVM guest carries on', async () => {
    const a = await xl('create', config('hvm-a'));
    const b = await xl('create', config('hvm-b'));
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const fromB = logSize('hvm-b');
    // Two firmware boots share the two pCPUs: allow for a loaded CI machine.
    await until('both banners', () => consoleLog('hvm-a').includes('U-Boot 2023') && consoleLog('hvm-b').includes('U-Boot 2023'), 45_000);
    const pid = Number(/hvm-a-dm \(pid (\d+)/.exec(a.stderr)![1]);
    process.kill(pid, 'SIGKILL');
    await until('hvm-a and hvm-a-dm destroyed', async () => !(await domains()).some((d) => d.name.startsWith('hvm-a')));
    const log = readFileSync(runDirLayout(stack.runDir).logFile('xl-hvm-a'), 'utf8');
    expect(log).toMatch(/device model hvm-a-dm .* died/);
    expect(log).toMatch(/reason code 3: action is destroy/);
    // The other guest is untouched: still there, still served, still printing.
    const ds = await domains();
    expect(ds.find((d) => d.name === 'hvm-b')?.shutdown).toBeNull();
    expect(ds.some((d) => d.name === 'hvm-b-dm')).toBe(true);
    await until('hvm-b reaching autoboot', () => consoleLog('hvm-b', fromB).includes('Hit any key'));
    expect((await xl('destroy', 'hvm-b')).code).toBe(0);
    await until('hvm-b-dm gone with its guest', async () => !(await domains()).some((d) => d.name.startsWith('hvm-b')));
  }, 120_000);

  it('runs the same device model inside dom0 with device_model_stubdomain_override = 0', async () => {
    const r = await xl('create', config('hvm-d0', { device_model_stubdomain_override: 0 }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/device model: hvm-d0-dm \(pid \d+, in dom0\)/);
    expect((await domains()).some((d) => d.name === 'hvm-d0-dm')).toBe(false);
    await until('its banner', () => consoleLog('hvm-d0').includes('U-Boot 2023'));
    const id = (await domains()).find((d) => d.name === 'hvm-d0')!.domid;
    expect((await dom0.call('hvm.ioreq_server.info', { domid: id })).server).toBe(0);
    const pid = Number(/\(pid (\d+), in dom0/.exec(r.stderr)![1]);
    expect((await xl('destroy', 'hvm-d0')).code).toBe(0);
    await until('the dom0 device model exits with its guest', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  }, 60_000);
});
