/**
 * Transmit rate limiting, as Linux xen-netback/netback.c does it for the
 * `rate` key (tx_credit_exceeded, tx_add_credit): a vif may send
 * `creditBytes` every `creditUsec`; a packet bigger than what is left waits
 * for the next window.  Credit accumulates up to max(128 KiB, creditBytes)
 * so a jumbo packet can always pass eventually.
 */
const MAX_BURST = 131072;

export class CreditLimiter {
  private remaining: number;
  private windowStart: number;

  constructor(
    readonly creditBytes: number,
    readonly creditUsec: number,
    private readonly nowUs: () => number = () => performance.now() * 1000,
  ) {
    this.remaining = creditBytes;
    this.windowStart = this.nowUs();
  }

  /** tx_add_credit */
  private addCredit(): void {
    const maxBurst = Math.max(MAX_BURST, this.creditBytes);
    this.remaining = Math.min(this.remaining + this.creditBytes, maxBurst);
  }

  /**
   * tx_credit_exceeded + the charge: 0 if `size` may go now (the credit is
   * taken), else the microseconds to wait before asking again.
   */
  take(size: number): number {
    const now = this.nowUs();
    const nextCredit = this.windowStart + this.creditUsec;
    if (now >= nextCredit) {
      this.windowStart = now;
      this.addCredit();
    }
    if (size > this.remaining) {
      // Linux arms the timer for next_credit and starts the next window there.
      return Math.max(1, this.windowStart + this.creditUsec - now);
    }
    this.remaining -= size;
    return 0;
  }
}
