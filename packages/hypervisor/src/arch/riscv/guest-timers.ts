/**
 * set_timer_op for guests (xen/common/sched/core.c do_set_timer_op): one
 * single-shot timer per vCPU that raises VIRQ_TIMER on that vCPU.  The
 * timeout is absolute, in the guest's Xen system time: nanoseconds = rdtime
 * × GUEST_NS_PER_TICK, the clock the vCPUs' `time` CSR counts (10 MHz from
 * the host's monotonic clock since the domain's CLINT epoch: clint.ts now(),
 * arch/riscv/hart.ts mtime()).  The caller passes that epoch, so a deadline
 * the guest computes from rdtime means the same instant here.
 */
import { GUEST_NS_PER_TICK, type DomId } from '@xenbox/abi';

/** The guest's system time now, ns: what rdtime × 100 reads on a vCPU whose CLINT epoch (ms, timeOrigin-based) is `epochMs`. */
export function guestSystemTimeNs(epochMs = 0): bigint {
  return BigInt(Math.floor((performance.timeOrigin + performance.now() - epochMs) * 10_000)) * BigInt(GUEST_NS_PER_TICK);
}

export class GuestTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** Arm vCPU `vcpu`'s timer for absolute time `deadlineNs` (0 cancels; the guest's clock starts at `epochMs`); a past deadline fires at once. */
  set(domid: DomId, vcpu: number, deadlineNs: bigint, fire: () => void, epochMs = 0): void {
    const key = `${domid}:${vcpu}`;
    const old = this.timers.get(key);
    if (old) clearTimeout(old);
    this.timers.delete(key);
    if (deadlineNs === 0n) return;
    const delta = deadlineNs - guestSystemTimeNs(epochMs);
    const ms = delta <= 0n ? 0 : Number(delta / 1_000_000n) + (delta % 1_000_000n === 0n ? 0 : 1);
    const t = setTimeout(() => {
      this.timers.delete(key);
      fire();
    }, Math.min(ms, 0x7fff_ffff));
    t.unref();
    this.timers.set(key, t);
  }

  /** The domain is gone: drop its timers. */
  cancelAll(domid: DomId): void {
    for (const [key, t] of this.timers) {
      if (key.startsWith(`${domid}:`)) {
        clearTimeout(t);
        this.timers.delete(key);
      }
    }
  }
}
