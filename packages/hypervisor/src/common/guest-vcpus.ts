/**
 * Guests' vCPUs: the hypervisor core's side of the scheduler (docs/sched.md,
 * "Wiring").  It starts the pCPU workers on the first guest, hands a guest to
 * the scheduler when the toolstack sets its boot vCPU's context, follows
 * pause/unpause/destroy, and serves what a running guest asks of the
 * hypervisor: Xen hypercalls in the RISC-V register ABI
 * (packages/abi/src/riscv-sbi.ts), console bytes, shutdown.
 */
import { GUEST_CONSOLE_BACKLOG, XEN_UPCALL_IRQ, XenError, type DomId, type VcpuContext } from '@xenbox/abi';
import { guestHypercall } from '../arch/riscv/guest-hypercalls.js';
import { GuestMemory } from '../arch/riscv/guest-memory.js';
import { GuestTimers } from '../arch/riscv/guest-timers.js';
import { CSR_SLOT } from '../arch/riscv/vcpu-state.js';
import { PcpuPool, VcpuScheduler, type HypercallResult } from '../sched/index.js';
import type { Domain } from './domain.js';
import type { Hypervisor } from '../hypervisor.js';

/** The interrupt an event-channel upcall raises in a guest: SSIP (@xenbox/abi XEN_UPCALL_IRQ, docs/pv-guest-abi.md). */
export const UPCALL_IRQ = XEN_UPCALL_IRQ;

export interface GuestVcpusOptions {
  pcpus?: number;
}

export class GuestVcpus {
  private sched: VcpuScheduler | null = null;
  private starting: Promise<VcpuScheduler> | null = null;
  /** Per guest: the tail of its console, for a console daemon that subscribes late. */
  private readonly backlog = new Map<DomId, Buffer>();
  /** set_timer_op timers, per guest vCPU. */
  private readonly timers = new GuestTimers();

  constructor(
    private readonly hv: Hypervisor,
    private readonly opts: GuestVcpusOptions,
  ) {}

  get scheduler(): VcpuScheduler | null {
    return this.sched;
  }

  /** The pCPUs the scheduler runs (or will run) guests on: `--pcpus`, else the host's parallelism. */
  get nrPcpus(): number {
    return this.sched?.nrPcpus ?? this.opts.pcpus ?? PcpuPool.defaultSize();
  }

  /** The scheduler, started now if no guest has started it yet (cpupool ops before the first guest). */
  startScheduler(): Promise<VcpuScheduler> {
    return this.ensureSched();
  }

  /** The pCPU workers start with the first guest: a stack without guests costs no threads. */
  private ensureSched(): Promise<VcpuScheduler> {
    this.starting ??= VcpuScheduler.create({
      pcpus: this.opts.pcpus,
      hooks: {
        onHypercall: (domid, vcpu, call) => this.hypercall(domid, vcpu, call),
        // HVM device MMIO the pCPU could not serve from the ioreq page: to the guest's device model.
        onMmio: (domid, vcpu, access) => this.hv.ioreq.mmio(domid, vcpu, access),
        onConsole: (domid, bytes) => this.consoleOutput(domid, bytes),
        onShutdown: (domid, reason) => this.guestShutdown(domid, reason.kind),
      },
    }).then((s) => {
      this.sched = s;
      // An event for a guest whose vCPUs are not (or no longer) scheduled stays pending in shared_info.
      this.hv.setGuestUpcallHook((d, vcpu) => {
        if (s.hasDomain(d.domid)) s.injectInterrupt(d.domid, vcpu < d.maxVcpus ? vcpu : 0, UPCALL_IRQ);
      });
      return s;
    });
    return this.starting;
  }

  /** XEN_DOMCTL_setvcpucontext: vCPU 0's context makes the guest schedulable (still paused). */
  async setContext(d: Domain, vcpu: number, ctx: VcpuContext): Promise<void> {
    const op = 'domctl.setvcpucontext';
    if (d.isProcess) throw new XenError('EINVAL', `${op}: d${d.domid} is a process domain; it has no vCPUs to start`);
    const want = d.kind === 'hvm' ? 'M' : 'S';
    if (ctx.mode !== want) throw new XenError('EINVAL', `${op}: a ${d.kind} guest starts in ${want}-mode, not ${ctx.mode}`);
    if (vcpu !== 0) throw new XenError('EOPNOTSUPP', `${op}: secondary vCPUs start through SBI HSM hart_start, not the toolstack`);
    if (!d.memory.ram) throw new XenError('EINVAL', `${op}: d${d.domid} has no RAM`);
    const sched = await this.ensureSched();
    // The first guest waits here for the pCPU threads to start (~100 ms): another toolstack call
    // may have destroyed the domain meanwhile, and its vCPUs must not outlive it in the scheduler.
    if (this.hv.domains.get(d.domid) !== d) throw new XenError('ESRCH', `${op}: d${d.domid} was destroyed while its vCPUs were being set up`);
    if (sched.hasDomain(d.domid)) throw new XenError('EEXIST', `${op}: d${d.domid}'s vCPU 0 context is already set`);
    const hvm = d.kind === 'hvm';
    sched.addDomain(d.domid, {
      vcpus: d.maxVcpus, ram: d.memory.ram, entry: ctx.pc, dtb: ctx.a1, kind: hvm ? 'hvm' : 'pvh', paused: true,
      // HVM: the register mirror and buffered writes its pCPUs serve without the main thread (common/ioreq-page.ts).
      ...(hvm ? { ioreqPage: this.hv.ioreq.pageFor(d.domid).sab } : {}),
    });
    d.vcpuStats = () => this.cpuTime(d.domid);
    if (!d.paused) sched.unpauseDomain(d.domid);
  }

  pause(d: Domain): Promise<void> | void {
    if (this.sched?.hasDomain(d.domid)) return this.sched.pauseDomain(d.domid);
  }

  unpause(d: Domain): void {
    if (this.sched?.hasDomain(d.domid)) this.sched.unpauseDomain(d.domid);
  }

  /** The guest is gone or shut down: its vCPUs stop for good. */
  async remove(domid: DomId): Promise<void> {
    this.backlog.delete(domid);
    this.timers.cancelAll(domid);
    if (this.sched?.hasDomain(domid)) await this.sched.removeDomain(domid);
  }

  /** cpu_time and running for getdomaininfo. */
  cpuTime(domid: DomId): { cpuTimeNs: number; running: boolean; vcpusOnline: number } | null {
    if (!this.sched?.hasDomain(domid)) return null;
    const info = this.sched.domainCpuInfo().find((x) => x.domid === domid);
    return {
      cpuTimeNs: info?.cpuTimeNs ?? 0,
      running: this.sched.vcpuList(domid).some((v) => v.state === 'running'),
      vcpusOnline: info?.vcpusOnline ?? 0,
    };
  }

  /** Keyboard input from xenconsoled: an HVM guest's goes to its device model's UART, a PVH guest's to its SBI console. */
  consoleInput(d: Domain, bytes: Uint8Array): void {
    if (d.kind === 'hvm') return this.hv.ioreq.consoleInput(d, bytes);
    if (!this.sched?.hasDomain(d.domid)) throw new XenError('ENODEV', `d${d.domid} has no running console`);
    this.sched.consoleInput(d.domid, bytes);
  }

  async stop(): Promise<void> {
    const s = this.sched ?? (this.starting ? await this.starting : null);
    await s?.destroy();
  }

  /** What a console daemon that subscribes now has missed. */
  backlogs(): Array<[DomId, Buffer]> {
    return [...this.backlog];
  }

  // ---------------------------------------------------------------- exits

  /** A guest's console bytes (SBI console, or an HVM guest's UART through its device model): backlog, xl dmesg, xenconsoled. */
  consoleOutput(domid: DomId, bytes: Uint8Array): void {
    const d = this.hv.domains.get(domid);
    if (!d || bytes.length === 0) return;
    const all = Buffer.concat([this.backlog.get(domid) ?? Buffer.alloc(0), bytes]);
    this.backlog.set(domid, all.length > GUEST_CONSOLE_BACKLOG ? all.subarray(all.length - GUEST_CONSOLE_BACKLOG) : all);
    this.hv.guestConsoleOutput(d, bytes);
  }

  private guestShutdown(domid: DomId, kind: 'poweroff' | 'reboot' | 'crash'): void {
    const d = this.hv.domains.get(domid);
    if (d) this.hv.shutdownDomain(d, kind);
  }

  /**
   * A guest's hypercall: a6 = __HYPERVISOR_* number, a0..a5 = arguments
   * (decoded in arch/riscv/guest-hypercalls.ts); returns Xen's value or
   * throws its errno, which the scheduler returns as -errno in a1.
   */
  private hypercall(domid: DomId, vcpu: number, call: { op: number; args: bigint[] }): HypercallResult {
    const d = this.hv.domains.get(domid);
    if (!d) throw new XenError('ESRCH', `d${domid} is gone`);
    const mem = new GuestMemory(d, () => this.sched!.vcpuState(domid, vcpu).csrBig(CSR_SLOT.satp) >> 60n !== 0n);
    const clockEpochMs = this.sched!.clockEpochMs(domid);
    return guestHypercall({ hv: this.hv, d, vcpu, mem, timers: this.timers, clockEpochMs, console: (bytes) => this.consoleOutput(domid, bytes) }, call.op, call.args);
  }
}
