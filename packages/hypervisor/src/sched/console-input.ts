/**
 * Keyboard input for a PVH guest's SBI console (DBCN read, legacy getchar),
 * from xenconsoled through the hypervisor's main thread to whichever pCPU
 * worker runs the guest: a single-producer single-consumer byte ring in a
 * SharedArrayBuffer.  Bytes that do not fit are dropped, as a UART drops
 * characters nobody reads.
 */
const HEAD = 0; // next byte to read (consumer)
const TAIL = 1; // next byte to write (producer)
const HEADER_BYTES = 8;
export const CONSOLE_INPUT_BYTES = 4096;

export class ConsoleInputRing {
  private readonly idx: Int32Array;
  private readonly data: Uint8Array;

  constructor(readonly sab: SharedArrayBuffer = new SharedArrayBuffer(HEADER_BYTES + CONSOLE_INPUT_BYTES)) {
    this.idx = new Int32Array(sab, 0, 2);
    this.data = new Uint8Array(sab, HEADER_BYTES);
  }

  /** Producer: returns how many bytes were taken. */
  push(bytes: Uint8Array): number {
    const head = Atomics.load(this.idx, HEAD);
    let tail = Atomics.load(this.idx, TAIL);
    let n = 0;
    for (const b of bytes) {
      if (tail - head >= CONSOLE_INPUT_BYTES) break;
      this.data[tail % CONSOLE_INPUT_BYTES] = b;
      tail++;
      n++;
    }
    Atomics.store(this.idx, TAIL, tail);
    return n;
  }

  /** Consumer: the next byte, or -1 when there is none. */
  pop(): number {
    const head = Atomics.load(this.idx, HEAD);
    if (head === Atomics.load(this.idx, TAIL)) return -1;
    const b = this.data[head % CONSOLE_INPUT_BYTES]!;
    Atomics.store(this.idx, HEAD, head + 1);
    return b;
  }
}
