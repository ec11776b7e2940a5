/**
 * set_timer_op's clock (arch/riscv/guest-timers.ts): a deadline is guest
 * system time, rdtime × 100 ns, and a vCPU's rdtime counts from its domain's
 * CLINT epoch — so a deadline a guest computes from rdtime must fire that
 * far in the future, not at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Clint } from '../src/arch/riscv/clint.js';
import { GuestTimers, guestSystemTimeNs } from '../src/arch/riscv/guest-timers.js';

const timers = new GuestTimers();
afterEach(() => timers.cancelAll(1));

function firedAfter(deadlineNs: bigint, epochMs: number): Promise<number> {
  const t0 = performance.now();
  return new Promise((res) => timers.set(1, 0, deadlineNs, () => res(performance.now() - t0), epochMs));
}

describe('set_timer_op deadlines', () => {
  it("are on the domain's clock: what rdtime × 100 reads on its vCPUs", () => {
    const clint = new Clint();
    const epoch = Clint.epochOf(clint.sab);
    const rdtimeNs = BigInt(clint.now()) * 100n;
    const ours = guestSystemTimeNs(epoch);
    expect(Number(ours - rdtimeNs)).toBeGreaterThanOrEqual(0);
    expect(Number(ours - rdtimeNs)).toBeLessThan(50_000_000); // the two reads are a few µs apart, 50 ms on a loaded box
  });

  it('fire that far ahead for a domain made a while ago, not at once', async () => {
    const epoch = performance.timeOrigin + performance.now() - 5_000; // a domain 5 s old
    const ms = await firedAfter(guestSystemTimeNs(epoch) + 150_000_000n, epoch);
    expect(ms).toBeGreaterThanOrEqual(140);
  });

  it('fire at once when already past, and not at all when cancelled with 0', async () => {
    const epoch = performance.timeOrigin + performance.now() - 5_000;
    expect(await firedAfter(guestSystemTimeNs(epoch) - 1_000_000n, epoch)).toBeLessThan(100);
    let fired = false;
    timers.set(1, 0, guestSystemTimeNs(epoch) + 20_000_000n, () => (fired = true), epoch);
    timers.set(1, 0, 0n, () => (fired = true), epoch);
    await new Promise((r) => setTimeout(r, 80));
    expect(fired).toBe(false);
  });
});
