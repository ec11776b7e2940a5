/**
 * VIRQ_DOM_EXC: xenstored asks the hypervisor for its domains and releases
 * every introduced domain the list says is gone (domain.c domain_cleanup()).
 * The list is asked for and answered asynchronously; a domain the toolstack
 * introduces in between is not in it and is not gone.  Seen in the chaos
 * benchmark: a new blkback incarnation released the moment it was born, its
 * devices deleted with its nodes, the guest's disk failing a minute later.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { runDirLayout, type DomainInfo } from '@xenbox/abi';
import { XenstoreClient, silentLogger, type HypervisorConnection } from '@xenbox/libxen';
import { XenstoredServer } from '../dist/server.js';

const VIRQ_PORT = 9;

/** Just enough hypervisor: VIRQ_DOM_EXC on VIRQ_PORT, and domain lists the test answers when it likes. */
class ScriptedHypervisor extends EventEmitter {
  readonly lists: Array<(l: DomainInfo[]) => void> = [];

  async call(op: string): Promise<unknown> {
    if (op === 'evtchn.bind_virq') return { port: VIRQ_PORT };
    if (op === 'sysctl.getdomaininfolist') return new Promise((r) => this.lists.push(r));
    if (op === 'evtchn.close' || op === 'evtchn.unmask') return null;
    throw new Error(`unexpected hypercall ${op}`);
  }

  post(): void {}

  domExc(): void {
    this.emit('evtchn.pending', { ports: [VIRQ_PORT] });
  }

  /** Answer the oldest list still asked for with these domids (all running). */
  answer(domids: number[]): void {
    const r = this.lists.shift();
    if (!r) throw new Error('xenstored has not asked for the domain list');
    r(domids.map((domid) => ({ domid, dying: false, shutdown: null }) as unknown as DomainInfo));
  }
}

const tick = () => new Promise((r) => setTimeout(r, 20));
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

it('a domain introduced while the domain list is on its way is not released, and is once a later list lacks it', async () => {
  const runDir = mkdtempSync(join(tmpdir(), 'xs-'));
  const hv = new ScriptedHypervisor();
  const server = await XenstoredServer.start({ runDir, log: silentLogger(), persistent: false, zmq: false, hv: hv as unknown as HypervisorConnection });
  const dom0 = await XenstoreClient.connectUnix(runDirLayout(runDir).xenstoredSocket, { timeoutMs: 5000 });
  cleanup = async () => {
    dom0.close();
    await server.close();
    rmSync(runDir, { recursive: true, force: true });
  };
  hv.answer([0]); // the look xenstored takes at start

  hv.domExc(); // some other domain died: xenstored asks for the list ...
  await tick();
  await dom0.introduce(7, { secret: 'a-new-driver-domain' }); // ... the toolstack introduces a new domain ...
  hv.answer([0]); // ... and the list, taken before d7 existed, arrives
  await tick();
  expect(await dom0.isDomainIntroduced(7)).toBe(true);

  hv.answer([0, 7]); // xenstored looked again, since the list it had was older than d7
  await tick();
  expect(await dom0.isDomainIntroduced(7)).toBe(true);

  hv.domExc(); // now d7 itself dies
  await tick();
  hv.answer([0]);
  await tick();
  expect(await dom0.isDomainIntroduced(7)).toBe(false);
});
