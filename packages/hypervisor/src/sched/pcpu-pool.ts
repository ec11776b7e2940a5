/**
 * The pCPUs: a piscina pool of N worker threads (`--pcpus N`, default
 * os.availableParallelism(); atomics 'sync', no idle timeout — DESIGN §6).
 * Each worker runs one long-lived pcpu-worker task; this side owns its
 * control block (the slice mailbox) and its MessagePort.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { XenError } from '@xenbox/abi';
import { CTL, CTL_BYTES, CTL_SLICE_NS, CTL_WORDS, MBOX, type DomainDescriptor, type FromWorker, type ToWorker } from './slice-protocol.js';

export interface Assignment {
  domid: number;
  vcpu: number;
  sliceNs: number;
  flags: number;
}

export class PcpuChannel {
  readonly c: Int32Array;
  private readonly f: Float64Array;
  private seq = 0;
  readonly known = new Set<number>();

  constructor(readonly pcpu: number, readonly ctl: SharedArrayBuffer, readonly port: MessagePort) {
    this.c = new Int32Array(ctl, 0, CTL_WORDS);
    this.f = new Float64Array(ctl, CTL_WORDS * 4, 1);
  }

  /** Send a domain's descriptor (once per pCPU; SharedArrayBuffers are shared, not copied). */
  ensureDomain(desc: DomainDescriptor): void {
    if (this.known.has(desc.domid)) return;
    this.known.add(desc.domid);
    this.port.postMessage({ kind: 'domain', desc } satisfies ToWorker);
    Atomics.add(this.c, CTL.DESC_GEN, 1);
  }

  forgetDomain(domid: number): void {
    if (!this.known.delete(domid)) return;
    this.port.postMessage({ kind: 'forget', domid } satisfies ToWorker);
    Atomics.add(this.c, CTL.DESC_GEN, 1);
  }

  /**
   * Put an assignment in the mailbox (replacing one not yet taken) and wake
   * the worker.  Returns its sequence number.
   */
  post(a: Assignment): number {
    for (;;) {
      const m = Atomics.load(this.c, CTL.MBOX);
      if (m === MBOX.QUIT) throw new XenError('ESRCH', `pCPU ${this.pcpu} is stopped`);
      if (m === MBOX.BUSY) continue;
      if (Atomics.compareExchange(this.c, CTL.MBOX, m, MBOX.BUSY) !== m) continue;
      const seq = ++this.seq;
      this.c[CTL.DOMID] = a.domid;
      this.c[CTL.VCPU] = a.vcpu;
      this.c[CTL.SEQ] = seq;
      this.c[CTL.FLAGS] = a.flags;
      this.f[CTL_SLICE_NS] = a.sliceNs;
      Atomics.store(this.c, CTL.MBOX, MBOX.POSTED);
      Atomics.notify(this.c, CTL.MBOX);
      return seq;
    }
  }

  /** Take back a posted assignment the worker has not taken yet. */
  retract(): boolean {
    return Atomics.compareExchange(this.c, CTL.MBOX, MBOX.POSTED, MBOX.EMPTY) === MBOX.POSTED;
  }

  quit(): void {
    Atomics.store(this.c, CTL.MBOX, MBOX.QUIT);
    Atomics.notify(this.c, CTL.MBOX);
  }
}

/** What the scheduler needs of its pCPUs: a mailbox and port each, and a way to stop them. */
export interface Pcpus {
  readonly channels: PcpuChannel[];
  destroy(): Promise<void>;
}

export class PcpuPool implements Pcpus {
  readonly channels: PcpuChannel[] = [];
  private readonly piscina: Piscina;
  private readonly tasks: Promise<unknown>[] = [];

  constructor(readonly size: number, onMessage: (pcpu: number, m: FromWorker) => void) {
    if (!Number.isInteger(size) || size < 1 || size > 256) throw new XenError('EINVAL', `--pcpus ${size}: need 1..256`);
    this.piscina = new Piscina({
      filename: new URL('./pcpu-worker.js', import.meta.url).href,
      minThreads: size,
      maxThreads: size,
      idleTimeout: Infinity,
      atomics: 'sync',
      concurrentTasksPerWorker: 1,
    });
    for (let p = 0; p < size; p++) {
      const { port1, port2 } = new MessageChannel();
      const ch = new PcpuChannel(p, new SharedArrayBuffer(CTL_BYTES), port1);
      port1.on('message', (m: FromWorker) => onMessage(p, m));
      this.channels.push(ch);
      this.tasks.push(this.piscina.run({ pcpu: p, ctl: ch.ctl, port: port2 }, { transferList: [port2] }));
    }
  }

  static defaultSize(): number {
    return availableParallelism();
  }

  async destroy(): Promise<void> {
    for (const ch of this.channels) ch.quit();
    await Promise.allSettled(this.tasks);
    for (const ch of this.channels) ch.port.close();
    await this.piscina.destroy();
  }
}
