/**
 * Guest console output in the order the guest wrote it.  A vCPU's SBI
 * console bytes are buffered by whichever pCPU worker runs it and travel in
 * that worker's slice report; reports of different workers arrive on
 * different MessagePorts, which do not keep order between them, so a vCPU
 * that moved from one worker to another could have its output swapped.
 * Each write takes a sequence number from a counter shared by the domain's
 * workers; the main thread delivers chunks in sequence order.
 */
export interface ConsoleChunk {
  seq: number;
  data: Uint8Array;
}

/** Worker side: buffered output of one domain, as sequence-numbered chunks. */
export class ConsoleWriter {
  private readonly counter: Int32Array;
  private chunks: { seq: number; bytes: number[] }[] = [];

  constructor(counterSab: SharedArrayBuffer) {
    this.counter = new Int32Array(counterSab);
  }

  write(bytes: Uint8Array | number[]): void {
    const seq = Atomics.add(this.counter, 0, bytes.length);
    const last = this.chunks[this.chunks.length - 1];
    if (last && last.seq + last.bytes.length === seq) last.bytes.push(...bytes);
    else this.chunks.push({ seq, bytes: [...bytes] });
  }

  take(): ConsoleChunk[] | undefined {
    if (!this.chunks.length) return undefined;
    const out = this.chunks.map((c) => ({ seq: c.seq, data: Uint8Array.from(c.bytes) }));
    this.chunks = [];
    return out;
  }
}

/** Main-thread side: release chunks of one domain in sequence order. */
export class ConsoleReorder {
  private next = 0;
  private readonly waiting = new Map<number, Uint8Array>();

  /** Add chunks; returns the bytes now deliverable, in order. */
  add(chunks: ConsoleChunk[]): Uint8Array[] {
    for (const c of chunks) this.waiting.set(c.seq, c.data);
    const ready: Uint8Array[] = [];
    for (let d = this.waiting.get(this.next); d; d = this.waiting.get(this.next)) {
      this.waiting.delete(this.next);
      this.next += d.length;
      ready.push(d);
    }
    return ready;
  }
}

export const newConsoleCounter = (): SharedArrayBuffer => new SharedArrayBuffer(4);
