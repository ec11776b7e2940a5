/**
 * The device model of one HVM guest: its emulated devices behind the ioreq
 * interface (packages/abi/src/ioreq.ts).  It registers the devices' windows
 * as the guest's ioreq server, applies each `hvm.ioreq` batch in guest order
 * (posted writes, then the synchronous request, whose answer goes back with
 * `hvm.ioreq_server.complete`), and keeps the hypervisor's register mirror
 * current: after every batch the mirrored registers that changed travel with
 * the completion, or in one posted `set_mirror`.  Everything it sends is
 * posted (no round trip waits on it), in order on its one connection.
 */
import { XenError, type DomId, type IoreqEvent, type IoreqHypercallOp, type IoreqHypercalls, type MirrorReg, type ShutdownReason } from '@xenbox/abi';
import type { DeviceHost, MmioDeviceModel } from './device.js';
import { Ns16550 } from './devices/ns16550.js';
import { SifiveTest } from './devices/sifive-test.js';
import { VirtioMmio, type VirtioBackend } from './devices/virtio-mmio.js';
import { VIRT_BOARD } from './virt-board.js';

/** The device model's view of its hypervisor connection: the ioreq ops, nothing else. */
export interface DmLink {
  call<O extends IoreqHypercallOp>(op: O, args: IoreqHypercalls[O]['args']): Promise<unknown>;
  post<O extends IoreqHypercallOp>(op: O, args: IoreqHypercalls[O]['args']): void;
}

export interface DeviceModelStats {
  syncRequests: number;
  bufferedWrites: number;
  events: number;
  mirrorUpdates: number;
}

export interface DeviceModelOptions {
  /**
   * The virtio devices in the guest's order (disks, then NICs: main.ts).  The
   * first takes the highest slot, 0x10008000, as QEMU's first `-device
   * virtio-*-device` does; U-Boot probes the device tree's slots from there
   * down, so it becomes `virtio 0` (riscv-platform.md §4).
   */
  virtio?: VirtioBackend[];
}

export class DeviceModel {
  readonly devices: MmioDeviceModel[] = [];
  readonly uart: Ns16550;
  readonly test: SifiveTest;
  readonly virtio: VirtioMmio[] = [];
  readonly stats: DeviceModelStats = { syncRequests: 0, bufferedWrites: 0, events: 0, mirrorUpdates: 0 };
  /** Last mirrored values sent: guest-physical addr -> value. */
  private readonly sent = new Map<number, number>();
  private readonly host: DeviceHost;
  /** A second reader of the guest's console output besides xenconsoled (the VNC text screen, vnc/vnc-console.ts). */
  onConsoleOutput: ((data: Uint8Array) => void) | null = null;

  constructor(readonly target: DomId, private readonly link: DmLink, opts: DeviceModelOptions = {}) {
    this.host = {
      setIrq: (source, level) => link.post('hvm.set_irq_level', { domid: target, source, level }),
      consoleOutput: (data) => {
        link.post('hvm.console_output', { domid: target, data });
        this.onConsoleOutput?.(data);
      },
      shutdown: (reason: ShutdownReason) => link.post('hvm.remote_shutdown', { domid: target, reason }),
    };
    this.uart = new Ns16550({ base: VIRT_BOARD.UART0, irq: VIRT_BOARD.UART0_IRQ, host: this.host });
    this.test = new SifiveTest(VIRT_BOARD.TEST, this.host);
    const backends = opts.virtio ?? [];
    if (backends.length > VIRT_BOARD.VIRTIO_COUNT) throw new XenError('ENOSPC', `${backends.length} virtio devices, but the virt board has ${VIRT_BOARD.VIRTIO_COUNT} virtio-mmio slots`);
    for (let n = 0; n < VIRT_BOARD.VIRTIO_COUNT; n++) {
      const backend = backends[virtioSlotOrder(n)];
      this.virtio.push(new VirtioMmio({ base: VIRT_BOARD.VIRTIO + n * VIRT_BOARD.VIRTIO_STRIDE, irq: VIRT_BOARD.VIRTIO_IRQ + n, host: this.host, ...(backend ? { backend } : {}) }));
    }
    this.devices.push(this.test, this.uart, ...this.virtio);
  }

  /** The transport of the i-th virtio device in the guest's order (its interrupt, its status). */
  virtioTransport(i: number): VirtioMmio {
    const t = this.virtio[virtioSlotOrder(i)];
    if (!t) throw new XenError('EINVAL', `no virtio-mmio slot for device ${i}`);
    return t;
  }

  /** Become the guest's ioreq server and publish the mirror; the guest may run after this. */
  async start(): Promise<void> {
    await this.link.call('hvm.ioreq_server.register', {
      domid: this.target,
      ranges: this.ranges(),
    });
    await this.link.call('hvm.ioreq_server.set_mirror', { domid: this.target, regs: this.mirrorChanges() });
  }

  /** The windows, adjacent ones with the same write mode merged (the virtio slots are one range). */
  ranges(): Array<{ base: number; size: number; posted: boolean }> {
    const out: Array<{ base: number; size: number; posted: boolean }> = [];
    for (const d of [...this.devices].sort((a, b) => a.base - b.base)) {
      const last = out[out.length - 1];
      if (last && last.base + last.size === d.base && last.posted === d.postedWrites) last.size += d.size;
      else out.push({ base: d.base, size: d.size, posted: d.postedWrites });
    }
    return out;
  }

  /** One `hvm.ioreq` event: posted writes in order, then the request (if any). */
  handleIoreq(ev: IoreqEvent): void {
    this.stats.events++;
    const b = ev.buffered;
    for (let i = 0; i + 2 < b.length; i += 3) this.access(true, b[i]!, b[i + 1]!, b[i + 2]!);
    this.stats.bufferedWrites += Math.floor(b.length / 3);
    let value = 0;
    if (ev.req) {
      this.stats.syncRequests++;
      value = this.access(ev.req.write, ev.req.addr, ev.req.size, ev.req.value);
    }
    this.uart.flush();
    const mirror = this.mirrorChanges();
    if (ev.req) this.link.post('hvm.ioreq_server.complete', { domid: this.target, id: ev.req.id, value, ...(mirror.length ? { mirror } : {}) });
    else if (mirror.length) this.link.post('hvm.ioreq_server.set_mirror', { domid: this.target, regs: mirror });
  }

  /** Keyboard bytes from xenconsoled for the guest's serial console. */
  consoleInput(data: Uint8Array): void {
    this.uart.receive(data);
    const mirror = this.mirrorChanges();
    if (mirror.length) this.link.post('hvm.ioreq_server.set_mirror', { domid: this.target, regs: mirror });
  }

  private access(write: boolean, addr: number, size: number, value: number): number {
    const d = this.devices.find((x) => addr >= x.base && addr - x.base < x.size);
    if (!d) return write ? 0 : 0xffff_ffff;
    if (write) {
      d.write(addr - d.base, size, value);
      return 0;
    }
    return d.read(addr - d.base, size);
  }

  /** Mirrored registers whose value changed since last sent. */
  private mirrorChanges(): MirrorReg[] {
    const out: MirrorReg[] = [];
    for (const d of this.devices) {
      for (const r of d.mirror()) {
        const addr = d.base + r.offset;
        if (this.sent.get(addr) === r.value) continue;
        this.sent.set(addr, r.value);
        out.push({ addr, size: r.size, value: r.value });
      }
    }
    if (out.length) this.stats.mirrorUpdates++;
    return out;
  }
}

/** Slot index <-> place in the guest's order: the list fills the slots from the highest down (an involution). */
export function virtioSlotOrder(n: number): number {
  return VIRT_BOARD.VIRTIO_COUNT - 1 - n;
}
