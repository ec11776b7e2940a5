/**
 * The scheduler against a pCPU played by the test, one step at a time.
 *
 * A real pCPU worker is a thread: when it takes its mailbox and when its
 * report reaches the main thread is up to the OS, so the races between the
 * two happen on a loaded machine and hardly ever on a quiet one.  Here the
 * test is the worker: it takes assignments (the worker's tryTake) and sends
 * slice reports exactly when a race needs them.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { CTL, CTL_BYTES, MBOX, PcpuChannel, VcpuScheduler, type FromWorker, type SliceReport } from '../../dist/sched/index.js';
import { addGuest, busyLoop, noHooks, sleep } from './guests.js';

interface Taken {
  domid: number;
  vcpu: number;
  seq: number;
}

/** One pCPU whose worker side the test drives. */
class ScriptedPcpu {
  constructor(
    readonly pcpu: number,
    readonly channel: PcpuChannel,
    private readonly send: (m: FromWorker) => void,
  ) {}

  /** What the mailbox holds, without taking it (undefined if empty). */
  posted(): Taken | undefined {
    const c = this.channel.c;
    if (Atomics.load(c, CTL.MBOX) !== MBOX.POSTED) return undefined;
    return { domid: c[CTL.DOMID]!, vcpu: c[CTL.VCPU]!, seq: c[CTL.SEQ]! };
  }

  /** The worker's tryTake: empty the mailbox and return what it held. */
  take(): Taken {
    const a = this.posted();
    if (!a) throw new Error(`pCPU ${this.pcpu}: nothing posted`);
    expect(Atomics.compareExchange(this.channel.c, CTL.MBOX, MBOX.POSTED, MBOX.EMPTY)).toBe(MBOX.POSTED);
    return a;
  }

  /** A slice report, as pcpu-worker.ts posts it. */
  report(a: Taken, r: Pick<SliceReport, 'reason' | 'next' | 'tookSeq' | 'ranNs'>): void {
    const t = performance.timeOrigin + performance.now();
    this.send({ kind: 'slice', pcpu: this.pcpu, domid: a.domid, vcpu: a.vcpu, executed: 0, startedAt: t - r.ranNs / 1e6, endedAt: t, timerNs: Infinity, ...r });
  }
}

let s: VcpuScheduler | undefined;
const ports: MessagePort[] = [];
afterEach(async () => {
  await s?.destroy();
  s = undefined;
  for (const p of ports.splice(0)) p.close();
});

/** A scheduler whose pCPUs are ScriptedPcpus. */
async function scripted(pcpus: number): Promise<{ s: VcpuScheduler; cpu: ScriptedPcpu[] }> {
  const cpu: ScriptedPcpu[] = [];
  const sched = await VcpuScheduler.create({
    pcpus,
    hooks: noHooks,
    pcpuPool: (size, onMessage) => {
      for (let p = 0; p < size; p++) {
        const { port1, port2 } = new MessageChannel();
        ports.push(port1, port2);
        cpu.push(new ScriptedPcpu(p, new PcpuChannel(p, new SharedArrayBuffer(CTL_BYTES), port1), (m) => onMessage(p, m)));
        queueMicrotask(() => onMessage(p, { kind: 'ready' }));
      }
      return { channels: cpu.map((c) => c.channel), destroy: async () => undefined };
    },
  });
  return { s: sched, cpu };
}

/**
 * Two pCPUs, pCPU 1 in a pool 'other', dom1 running on pCPU 0 (taken, no
 * report yet) and `xl cpupool-migrate dom1 other` waiting for it to leave.
 * `moving` settles with 'moved' or the errno.
 */
async function migrationUnderWay(): Promise<{ sched: VcpuScheduler; p0: ScriptedPcpu; a1: Taken; moving: Promise<string | undefined> }> {
  const t = await scripted(2);
  const sched = (s = t.s);
  const [p0] = t.cpu as [ScriptedPcpu, ScriptedPcpu];
  sched.cpupoolCpuRemove('Pool-0', 1);
  sched.cpupoolCreate('other', 'credit2', [1]);
  addGuest(sched, 1, busyLoop);
  const a1 = p0.take();
  const moving = sched.cpupoolMigrate(1, 'other').then(() => 'moved', (e: { errno?: string }) => e.errno);
  return { sched, p0, a1, moving };
}

describe('the scheduler against a scripted pCPU', () => {
  it('a vCPU whose assignment is taken back from the mailbox of a pCPU gone idle is not left counted on that pCPU', async () => {
    const t = await scripted(1);
    s = t.s;
    const [p0] = t.cpu as [ScriptedPcpu];
    // dom1 spins: the pCPU takes it and reports an extension (it keeps running it).
    addGuest(s, 1, busyLoop);
    const a1 = p0.take();
    expect(a1.domid).toBe(1);
    p0.report(a1, { reason: 'budget', next: 'extend', tookSeq: a1.seq, ranNs: 5e6 });
    await sleep(3); // past credit2's ratelimit (1 ms), so a fresh vCPU may take over
    // dom2 becomes runnable: the scheduler posts it, to replace dom1's extension.
    addGuest(s, 2, busyLoop, { paused: true });
    s.unpauseDomain(2);
    expect(p0.posted()?.domid).toBe(2);
    // The worker's extension of dom1 ended before it looked at the mailbox: it reports 'wait'
    // and (on a loaded machine) has not yet woken to take dom2's assignment.
    p0.report(a1, { reason: 'preempted', next: 'wait', tookSeq: 0, ranNs: 1e6 });
    // Now pausing dom2 takes its assignment back from the mailbox.  Nothing runs dom2, so no
    // report will ever take it off the pCPU: the pause must not wait for one.
    const paused = await Promise.race([s.pauseDomain(2).then(() => 'paused'), sleep(1000).then(() => 'still waiting for dom2 to leave pCPU 0')]);
    expect(paused).toBe('paused');
    expect(s.vcpuList(2)[0]!.state).toBe('paused');
    // And the pCPU is not left idle: dom1 gets it back.
    expect(p0.posted()?.domid).toBe(1);
  });

  it('a domain destroyed while cpupool-migrate waits for it to leave its pCPU is not moved into the new pool', async () => {
    const { sched, p0, a1, moving } = await migrationUnderWay(); // dom1 runs on pCPU 0 and is moving to 'other' ...
    const gone = sched.removeDomain(1); // ... and is destroyed while the migration waits for it
    p0.report(a1, { reason: 'preempted', next: 'wait', tookSeq: a1.seq, ranNs: 1e6 });
    await gone;
    expect(await moving).toBe('ESRCH');
    expect(sched.cpupoolList().map((p) => [p.name, p.domains])).toEqual([['Pool-0', []], ['other', []]]);
    expect(sched.vcpuList()).toEqual([]);
  });

  it('a cpupool destroyed while a domain waits to move into it leaves the domain running where it was', async () => {
    const { sched, p0, a1, moving } = await migrationUnderWay();
    sched.cpupoolDestroy('other'); // it has no domain yet, so Xen lets it go
    p0.report(a1, { reason: 'preempted', next: 'wait', tookSeq: a1.seq, ranNs: 1e6 });
    expect(await moving).toBe('ENOENT');
    expect(sched.cpupoolList().map((p) => [p.name, p.domains])).toEqual([['Pool-0', [1]]]);
    expect(sched.vcpuList(1)[0]!.state).not.toBe('paused');
    expect(p0.posted()?.domid).toBe(1);
  });
});

