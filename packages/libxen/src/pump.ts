/**
 * Serve-until-quiet, one pass at a time: the shape of every backend's event
 * handler (Linux's xenstored domain.c handle_input, xenconsoled's
 * handle_ring_read, blkback's do_block_io_op loop).  kick() starts a pass,
 * or, if one is running, asks for another when it ends; so an event that
 * arrives while a pass awaits a barrier is never lost and passes never
 * overlap.
 */
export class Pump {
  private running = false;
  private rerun = false;

  /** @param pass one look at the ring; returns false to stop (the ring is gone). */
  constructor(private readonly pass: () => Promise<boolean>) {}

  kick(): void {
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    // The finally runs in the same tick as the loop's last look at `rerun` (no await between):
    // no kick falls in between and is lost.
    try {
      do {
        this.rerun = false;
        if (!(await this.pass())) return;
      } while (this.rerun);
    } finally {
      this.running = false;
    }
  }
}
