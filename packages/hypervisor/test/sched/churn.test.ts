/**
 * Domains coming and going as fast as a toolstack can make them, on real
 * pCPU worker threads: the bookkeeping of which vCPU is on which pCPU must
 * stay right through every race between the main thread and the workers.
 * A vCPU left counted on a pCPU that does not run it never runs again, and
 * pausing or destroying its domain waits for ever (seen as `xl create -p`
 * then `xl unpause` of a guest that never printed, on a loaded machine).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VcpuScheduler } from '../../dist/sched/index.js';
import { a0, a7, ecall, jal, li, wfi, type Program } from '../riscv/asm.js';
import { addGuest, busyLoop, sleep } from './guests.js';

/** Prints one byte with the SBI legacy console (EID 1), then waits in WFI for good. */
const hello: Program = [li(a7, 1), li(a0, 72), ecall(), wfi(), jal(0, -4)];
/** An all-zero word is an illegal instruction: the guest crashes at its first one. */
const crashAtOnce: Program = [0];

const CHURN_MS = 3000;
/** Far above the worst seen (~60 ms on a loaded 2-core machine); a leaked vCPU never finishes at all. */
const STEP_LIMIT_MS = 2000;

let s: VcpuScheduler | undefined;
afterEach(async () => {
  await s?.destroy();
  s = undefined;
});

async function within<T>(what: string, p: Promise<T>): Promise<void> {
  const r = await Promise.race([p.then(() => 'done'), sleep(STEP_LIMIT_MS).then(() => 'timed out')]);
  expect(r, `${what}: ${JSON.stringify(s?.vcpuList())}`).toBe('done');
}

describe('domain churn on two pCPU threads', () => {
  it('every unpaused guest runs, and every pause and destroy completes, while guests crash, spin and go', async () => {
    const printed = new Map<number, () => void>();
    const dying = new Set<number>();
    const sched = await VcpuScheduler.create({
      pcpus: 2,
      hooks: {
        onHypercall: () => -38,
        onConsole: (domid) => printed.get(domid)?.(),
        // A crashed guest is destroyed by "the toolstack" a moment later, as xl's monitor does.
        onShutdown: (domid) => {
          if (dying.has(domid)) return;
          dying.add(domid);
          setTimeout(() => void sched.removeDomain(domid), Math.random() * 3);
        },
      },
    });
    s = sched;
    let domid = 10;
    const spinners: number[] = [];
    let rounds = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < CHURN_MS) {
      rounds++;
      for (let k = 0; k < Math.random() * 6; k++) addGuest(sched, domid++, crashAtOnce);
      if (Math.random() < 0.5) {
        spinners.push(domid);
        addGuest(sched, domid++, busyLoop);
      }
      if (spinners.length > 2 || (spinners.length && Math.random() < 0.3)) {
        const old = spinners.shift()!;
        if (Math.random() < 0.5) await within(`pausing spinner d${old}`, sched.pauseDomain(old));
        void sched.removeDomain(old);
      }
      // xl create -p, then xl unpause: the guest must print.
      const guest = domid++;
      addGuest(sched, guest, hello, { paused: true });
      await sleep(Math.random() * 5);
      const greeted = new Promise<void>((r) => printed.set(guest, r));
      sched.unpauseDomain(guest);
      await within(`d${guest} printing after unpause`, greeted);
      if (Math.random() < 0.5) await within(`destroying d${guest}`, sched.removeDomain(guest));
      else void sched.removeDomain(guest);
    }
    expect(rounds).toBeGreaterThan(50);
  });
});
