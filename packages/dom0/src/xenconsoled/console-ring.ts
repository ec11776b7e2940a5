/**
 * One guest's PV console ring (`struct xencons_interface`,
 * xen/include/public/io/console.h), served as tools/console/daemon/io.c
 * does:
 *
 * - output: on each event, out[out_cons .. out_prod) is copied out and
 *   out_cons advanced (buffer_append()); indexes claiming more than the
 *   2048-byte ring are ignored, as Xen does ("ring is screwed");
 * - input: keystrokes go into in[] only as far as there is room
 *   (1024 - (in_prod - in_cons)), in_prod advanced, the guest signalled
 *   (handle_tty_read()); what does not fit waits for the guest's next event,
 *   up to INPUT_BACKLOG bytes;
 * - `connection` is set to XENCONSOLE_CONNECTED once we serve the ring.
 *
 * The page is a mirror refreshed before each event: out_prod is read from
 * one refresh and the bytes below it after the next (`barrier()`), the
 * mirror's rmb() (a refresh may copy the page while the guest writes it).
 */
import { XENCONSOLE_CONNECTED, XENCONS_RING, maskXenconsIdx } from '@xenbox/abi';
import { Pump, type Logger } from '@xenbox/libxen';

/** What the ring needs of the mapped page (a libxen MirrorPage). */
export interface ConsolePage {
  u32(offset: number): number;
  setU32(offset: number, value: number): void;
  read(offset: number, len: number): Uint8Array;
  write(offset: number, data: Uint8Array): void;
}

export interface ConsoleRingIo {
  page: ConsolePage;
  barrier(): Promise<void>;
  notify(): void;
  teardown(): Promise<void>;
}

const R = XENCONS_RING;
/** Keyboard bytes kept while the guest's in[] is full (a paste), beyond which they are dropped. */
const INPUT_BACKLOG = 16 * 1024;

const distance = (cons: number, prod: number): number => (prod - cons) >>> 0;

export class ConsoleRing {
  private readonly pumper = new Pump(() => this.pass());
  private closed = false;
  private input: Buffer[] = [];
  private inputLen = 0;
  /** The guest has used the ring (written output or taken input): keyboard input goes here, not to its SBI console. */
  active = false;
  /** Output bytes taken, for tests. */
  taken = 0;

  constructor(
    readonly domid: number,
    private readonly io: ConsoleRingIo,
    private readonly output: (data: Uint8Array) => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    // Indexes already moved: the guest used the ring before (we are a restarted xenconsoled).
    this.active = this.io.page.u32(R.OUT_PROD) !== 0 || this.io.page.u32(R.IN_CONS) !== 0;
    // connection is a byte (uint8_t) at 3088: write just it.
    this.io.page.write(R.CONNECTION, Uint8Array.of(XENCONSOLE_CONNECTED));
    this.io.notify();
    this.pump();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.io.teardown().catch((e: unknown) => this.log.warn({ dom: this.domid, err: (e as Error).message }, 'unmapping a console ring failed'));
  }

  /** Keyboard input for the guest: into in[] as room allows, the rest when the guest makes room. */
  write(data: Uint8Array): void {
    if (this.closed) return;
    if (this.inputLen + data.length > INPUT_BACKLOG) data = data.subarray(0, Math.max(0, INPUT_BACKLOG - this.inputLen));
    if (data.length === 0) return;
    this.input.push(Buffer.from(data));
    this.inputLen += data.length;
    this.pump();
  }

  /** An event from the guest: take its output, give it pending input. */
  pump(): void {
    if (!this.closed) this.pumper.kick();
  }

  /** One pass (Pump): false once the ring is gone. */
  private async pass(): Promise<boolean> {
    try {
      const outProd = this.io.page.u32(R.OUT_PROD);
      // Only output to read needs the barrier; in_cons is safe to use stale.
      if (outProd !== this.io.page.u32(R.OUT_CONS)) await this.io.barrier();
      if (this.closed) return false;
      const took = this.takeOutput(outProd);
      const gave = this.giveInput();
      if (took || gave) this.io.notify();
      return !this.closed;
    } catch (e) {
      this.log.info({ dom: this.domid, why: (e as Error).message }, 'console ring gone');
      void this.close();
      return false;
    }
  }

  private takeOutput(prod: number): boolean {
    const page = this.io.page;
    const cons = page.u32(R.OUT_CONS);
    const size = distance(cons, prod);
    if (size === 0 || size > R.OUT_SIZE) return false; // nothing, or hostile indexes: ignored (io.c buffer_append)
    const chunks: Uint8Array[] = [];
    let at = cons;
    while (at !== prod) {
      const off = maskXenconsIdx(at, R.OUT_SIZE);
      const n = Math.min(distance(at, prod), R.OUT_SIZE - off);
      chunks.push(page.read(R.OUT + off, n));
      at = (at + n) >>> 0;
    }
    page.setU32(R.OUT_CONS, prod);
    this.active = true;
    this.taken += size;
    this.output(Buffer.concat(chunks));
    return true;
  }

  private giveInput(): boolean {
    if (this.inputLen === 0) return false;
    const page = this.io.page;
    const cons = page.u32(R.IN_CONS);
    let prod = page.u32(R.IN_PROD);
    const used = distance(cons, prod);
    if (used > R.IN_SIZE) return false; // the ring is screwed: ignore it (domain_ring_free_bytes)
    let room = R.IN_SIZE - used;
    const start = prod;
    while (room > 0 && this.inputLen > 0) {
      const head = this.input[0]!;
      const off = maskXenconsIdx(prod, R.IN_SIZE);
      const n = Math.min(room, head.length, R.IN_SIZE - off);
      page.write(R.IN + off, head.subarray(0, n));
      prod = (prod + n) >>> 0;
      room -= n;
      this.inputLen -= n;
      if (n === head.length) this.input.shift();
      else this.input[0] = head.subarray(n);
    }
    if (prod === start) return false;
    page.setU32(R.IN_PROD, prod);
    return true;
  }
}
