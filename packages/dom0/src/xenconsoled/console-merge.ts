/**
 * A guest has two consoles that xenconsoled shows as one stream: its SBI
 * console (bytes from the hypervisor, often one at a time) and its PV
 * console ring (chunks, read one mirror refresh later).  Interleaved as they
 * come, a ring line could land in the middle of an SBI line.  This switches
 * between the sources only at line ends: while one source has a line open,
 * the other's output waits, until that line ends or for at most HOLD_MS.
 */
export type ConsoleSource = 'sbi' | 'ring';

/** Longest a source waits for the other to finish its line. */
export const HOLD_MS = 100;

export class ConsoleMerge {
  /** The source whose last line is not finished yet. */
  private open: ConsoleSource | null = null;
  private readonly held: Record<ConsoleSource, Uint8Array[]> = { sbi: [], ring: [] };
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly emit: (data: Uint8Array) => void) {}

  push(src: ConsoleSource, data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.open !== null && this.open !== src) {
      this.held[src].push(data);
      this.timer ??= setTimeout(() => this.giveUp(), HOLD_MS);
      return;
    }
    this.write(src, data);
  }

  private write(src: ConsoleSource, data: Uint8Array): void {
    this.emit(data);
    this.open = data[data.length - 1] === 0x0a ? null : src;
    if (this.open === null) this.release();
  }

  /** The open line ended: what the other source held goes out (it may open a line of its own). */
  private release(): void {
    for (const src of ['sbi', 'ring'] as const) {
      const held = this.held[src];
      if (held.length === 0) continue;
      this.held[src] = [];
      this.clearTimer();
      for (const d of held) {
        this.emit(d);
        this.open = d[d.length - 1] === 0x0a ? null : src;
      }
      if (this.open !== null) return;
    }
  }

  /** The open line did not end in time: interleave rather than stall. */
  private giveUp(): void {
    this.timer = null;
    this.open = null;
    this.release();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  dispose(): void {
    this.clearTimer();
  }
}
