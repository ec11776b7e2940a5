/**
 * The PV guest ABI end to end (docs/pv-guest-abi.md): a C guest
 * (packages/guests/pv/evtchn-test.c) maps shared_info, takes event upcalls,
 * binds VIRQ_TIMER, grants dom0 a page and offers it an event channel; this
 * test, as a dom0 process, maps the grant and ping-pongs events with it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDirLayout } from '@xenbox/abi';
import { Evtchn, GrantMapper, HypervisorConnection } from '@xenbox/libxen';
import { TestStack } from './helpers/stack.js';
import { REPO } from './helpers/paths.js';

const IMAGE = resolve(REPO, 'packages/guests/images/pv-evtchn-test.elf');
const GRANTED_TEXT = 'xenbox: a page granted by a RISC-V PV guest';
const PINGS = 100;

let stack: TestStack;
let dom0: HypervisorConnection;
let domid: number;

const xl = (...args: string[]) => stack.xl(...args);

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What the guest printed so far (xenconsoled's log of it). */
function consoleText(): string {
  const file = runDirLayout(stack.runDir).consoleLog('pvtest');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

beforeAll(async () => {
  stack = await TestStack.up('pvguest');
  const token = readFileSync(runDirLayout(stack.runDir).dom0Token, 'utf8').trim();
  dom0 = await HypervisorConnection.connect({ runDir: stack.runDir, domid: 0, token });
  const cfg = join(stack.runDir, 'pvtest.cfg');
  writeFileSync(cfg, `name = "pvtest"\ntype = "pvh"\nmemory = 16\nkernel = "${IMAGE}"\n`);
  const r = await xl('create', cfg);
  expect(r.code, r.stderr).toBe(0);
  domid = Number(/Domain (\d+) \(pvtest\) created/.exec(r.stderr)?.[1]);
});

afterAll(async () => {
  if (stack && domid) await xl('destroy', 'pvtest');
  await dom0?.close();
  await stack?.destroy();
});

describe('a PV guest on xenbox RISC-V', () => {
  it('places shared_info and gets a timer upcall after set_timer_op', async () => {
    await until('the timer upcall', () => consoleText().includes('timer upcall'));
    expect(consoleText()).toContain('shared_info mapped');
  });

  it('gets -EFAULT for a bad hypercall pointer and -ENOSYS for a bad EVTCHNOP, and goes on', () => {
    const text = consoleText();
    expect(text).toContain('bad pointer rc=-14');
    expect(text).toContain('bad op rc=-38');
    expect(text.indexOf('timer upcall')).toBeGreaterThan(text.indexOf('bad op rc=-38'));
  });

  it('grants dom0 a page that dom0 maps and reads', async () => {
    const [, , gref] = await until('port and gref', () => /port=(\d+) gref=(\d+)/.exec(consoleText()));
    const mapper = new GrantMapper(dom0);
    const { handle, page } = await mapper.mapOne(domid, Number(gref), true);
    expect(Buffer.from(page.read(0, GRANTED_TEXT.length)).toString('latin1')).toBe(GRANTED_TEXT);
    await mapper.unmap([{ handle, page }]);
  });

  it(`ping-pongs ${PINGS} events with dom0 over an interdomain channel, none lost`, async () => {
    const [, port] = (await until('port and gref', () => /port=(\d+) gref=(\d+)/.exec(consoleText())))!;
    const evtchn = Evtchn.of(dom0);
    let echoes = 0;
    let wake: (() => void) | null = null;
    const lport = await evtchn.bindInterdomain(domid, Number(port));
    evtchn.onEvent(lport, () => {
      echoes++;
      wake?.();
    });
    // bind_interdomain sets our new port pending once ("we may have lost notifications");
    // that event may come before the reply, so before our handler: let it pass.
    await new Promise((r) => setTimeout(r, 100));
    const base = echoes;
    const echoed = (n: number) =>
      new Promise<void>((res, rej) => {
        // On a stall, say what the guest last printed (a failed send shows there as "send failed: -N").
        const timer = setTimeout(() => rej(new Error(`echo ${n} did not come (got ${echoes - base}); guest console ends:\n${consoleText().slice(-300)}`)), 5000);
        wake = () => {
          if (echoes - base < n) return;
          clearTimeout(timer);
          wake = null;
          res();
        };
        wake();
      });
    for (let i = 1; i <= PINGS; i++) {
      evtchn.notify(lport);
      await echoed(i);
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(echoes - base).toBe(PINGS);
    await until('the guest to count them', () => consoleText().includes(`echoed ${PINGS}`));
    expect(consoleText()).not.toContain('panic');
    await evtchn.close(lport);
  });
});
