/**
 * sched: the vCPU scheduler (packages/hypervisor/src/sched) with real
 * RISC-V guests on pCPU worker threads.
 *
 * - overhead at ~1 ms slices: three busy credit2 domains on one pCPU (equal
 *   weights make credit2 switch every ratelimit = 1 ms); overhead is the share
 *   of the pCPU's wall time not spent inside Hart.run.  Baseline: guest MIPS
 *   of one busy domain alone on the pCPU (no switches), same run.
 * - context switches per second in that run.
 * - wake-up latency: a vCPU blocked in WFI gets an injected interrupt; time
 *   from injectInterrupt() to the worker starting to run it (idle pCPU, and
 *   with a busy competitor, where credit2's ratelimit bounds it).
 * - fairness: weights 256/512/256, cap 25, rtds 2 ms / 10 ms, as % of CPU.
 * All figures come from accounted guest time (measured around Hart.run).
 */
import { VcpuScheduler, type DomainSchedConfig } from '@xenbox/hypervisor/sched';
import { median, percentile, result, type Benchmark, type BenchResult } from './harness.js';

const RAM_BASE = 0x8000_0000;
/** Machine code of busyLoop and (a simpler form of) wakeCounter from packages/hypervisor/test/sched/guests.ts, checked with test/riscv/asm.ts. */
const BUSY = [0x00168693, 0xffdff06f]; // 1: addi a3,a3,1; j 1b
const WAKE_COUNTER = [0x00200293, 0x1042a073, 0x10500073, 0x14417073, 0x00168693, 0xff5ff06f]; // sie.SSIE=1; 1: wfi; clear sip.SSIP; a3++; j 1b
const IRQ_SSI = 1;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function guest(words: number[]): SharedArrayBuffer {
  const ram = new SharedArrayBuffer(64 << 10);
  const v = new DataView(ram);
  words.forEach((w, i) => v.setUint32(4 * i, w, true));
  return ram;
}

function add(s: VcpuScheduler, domid: number, words: number[], cfg: Partial<DomainSchedConfig> = {}): void {
  s.addDomain(domid, { vcpus: 1, ram: guest(words), entry: RAM_BASE, dtb: 0, kind: 'pvh', ...cfg });
}

interface Window {
  wallNs: number;
  ns: Map<number, number>;
  instructions: number;
  switches: number;
}

/** Accounted guest ns per domain, instructions retired and context switches over `ms`. */
async function window(s: VcpuScheduler, domids: number[], ms: number): Promise<Window> {
  const cpu = (): Map<number, number> => new Map(s.domainCpuInfo().map((d) => [d.domid, d.cpuTimeNs]));
  const insns = (): number => domids.reduce((n, d) => n + s.vcpuState(d, 0).instret, 0);
  const b = cpu(), bi = insns(), bs = s.accounting.contextSwitches, t0 = performance.now();
  await sleep(ms);
  const wallNs = (performance.now() - t0) * 1e6;
  const a = cpu();
  return { wallNs, ns: new Map(domids.map((d) => [d, a.get(d)! - b.get(d)!])), instructions: insns() - bi, switches: s.accounting.contextSwitches - bs };
}

async function withScheduler<T>(opts: { pcpus: number; scheduler?: 'credit2' | 'rtds' | 'null' }, f: (s: VcpuScheduler) => Promise<T>): Promise<T> {
  const s = await VcpuScheduler.create({ ...opts, hooks: { onHypercall: () => -38 } });
  try {
    return await f(s);
  } finally {
    await s.destroy();
  }
}

const pct = (n: number, of: number): number => (100 * n) / of;

export const benchmark: Benchmark = {
  name: 'sched',
  description: 'vCPU scheduler: overhead at 1 ms slices, context switches, wake-up latency, credit2/rtds fairness',
  async run(ctx) {
    const out: BenchResult[] = [];

    const alone = await withScheduler({ pcpus: 1 }, async (s) => {
      add(s, 1, BUSY);
      await sleep(300);
      return window(s, [1], 2000);
    });
    const aloneMips = alone.instructions / (alone.wallNs / 1e3);
    ctx.progress(`one busy domain alone: ${aloneMips.toFixed(0)} MIPS, ${pct(alone.ns.get(1)!, alone.wallNs).toFixed(2)} % of the pCPU in guest code`);

    const shared = await withScheduler({ pcpus: 1 }, async (s) => {
      for (const d of [1, 2, 3]) add(s, d, BUSY);
      await sleep(300);
      return window(s, [1, 2, 3], 3000);
    });
    const guestNs = [...shared.ns.values()].reduce((a, b) => a + b, 0);
    const overhead = 100 - pct(guestNs, shared.wallNs);
    const sharedMips = shared.instructions / (shared.wallNs / 1e3);
    const switchesPerS = shared.switches / (shared.wallNs / 1e9);
    const sliceUs = guestNs / shared.switches / 1e3;
    ctx.progress(`3 busy domains: overhead ${overhead.toFixed(2)} %, ${switchesPerS.toFixed(0)} switches/s, mean stint ${sliceUs.toFixed(0)} us, ${sharedMips.toFixed(0)} MIPS`);
    out.push(result('scheduling overhead, 3 busy vCPUs on 1 pCPU (share of pCPU wall time outside guest code)', overhead, '%', null, '< 5 %'));
    out.push(result('mean time on the pCPU between context switches', sliceUs, 'us', null, '~1000 us (credit2 ratelimit)'));
    out.push(result('context switches per second', switchesPerS, '/s', null, null));
    out.push(result('guest MIPS at 1 ms slices vs one domain alone (same run; moves ±15 % with machine load)', sharedMips, 'MIPS', aloneMips, null));

    for (const busy of [false, true]) {
      const lat = await withScheduler({ pcpus: 1 }, async (s) => {
        add(s, 1, WAKE_COUNTER);
        if (busy) add(s, 2, BUSY);
        await sleep(200);
        for (let i = 0; i < 200; i++) {
          s.injectInterrupt(1, 0, IRQ_SSI);
          await sleep(3 + (i % 3));
        }
        await sleep(20);
        return [...s.wakeLatenciesUs];
      });
      const what = busy ? 'pCPU busy with a credit2 competitor' : 'idle pCPU';
      ctx.progress(`wake-up latency, ${what}: median ${median(lat).toFixed(0)} us, p99 ${percentile(lat, 99).toFixed(0)} us (${lat.length} wakes)`);
      out.push(result(`wake-up latency, injected interrupt -> guest running, ${what} (median)`, median(lat), 'us', null, busy ? '<= ratelimit (1000 us) + a switch' : null));
      out.push(result(`wake-up latency, ${what} (p99)`, percentile(lat, 99), 'us', null, null));
    }

    const weights = await withScheduler({ pcpus: 1 }, async (s) => {
      add(s, 1, BUSY);
      add(s, 2, BUSY, { weight: 512 });
      add(s, 3, BUSY);
      await sleep(300);
      return window(s, [1, 2, 3], 2000);
    });
    const total = [...weights.ns.values()].reduce((a, b) => a + b, 0);
    [256, 512, 256].forEach((w, i) =>
      out.push(result(`credit2 weight ${w} (dom${i + 1} of 256/512/256), share of CPU`, pct(weights.ns.get(i + 1)!, total), '%', w === 512 ? 50 : 25, '±5 points')),
    );

    const cap = await withScheduler({ pcpus: 1 }, async (s) => {
      add(s, 1, BUSY, { cap: 25 });
      await sleep(200);
      return window(s, [1], 2000);
    });
    out.push(result('credit2 cap 25, busy domain alone, % of a pCPU', pct(cap.ns.get(1)!, cap.wallNs), '%', 25, '<= 27 %'));

    const rtds = await withScheduler({ pcpus: 1, scheduler: 'rtds' }, async (s) => {
      add(s, 1, BUSY);
      add(s, 2, BUSY);
      s.setRtds(1, 'all', { period: 10_000, budget: 2_000, extratime: false });
      await sleep(200);
      return window(s, [1, 2], 2000);
    });
    out.push(result('rtds budget 2 ms / period 10 ms (competitor on extratime), % of a pCPU', pct(rtds.ns.get(1)!, rtds.wallNs), '%', 20, '20 ± 3 %'));
    return out;
  },
};
