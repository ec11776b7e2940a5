/**
 * The vCPU scheduler of the hypervisor: the facade the hypervisor core calls
 * (domains in, hypercalls/MMIO/console/shutdown out) and the dispatcher that
 * moves vCPUs on and off the pCPU workers (xen/common/sched/core.c's role:
 * runstates, wake/sleep, pause, affinity, cpupool moves, schedule()).
 * API: docs/sched.md.
 */
import {
  CREDIT2_WEIGHT_DEFAULT, DEFAULT_SCHEDULER, SCHEDOP, XEN_ERRNO, XEN_HYPERCALL, XenError,
  type CpuList, type CpupoolInfo, type Credit2Params, type DomainCpuInfo, type PoolSchedParams, type RtdsVcpuParams,
  type SchedulerName, type VcpuInfo,
} from '@xenbox/abi';
import type { MmioRequest } from '../arch/riscv/hart.js';
import { Clint } from '../arch/riscv/clint.js';
import { Plic } from '../arch/riscv/plic.js';
import { PRIV } from '../arch/riscv/trap.js';
import {
  clearExitPending, completeHypercallState, completeMmioState, CSR_SLOT, hypercallOf, requestPreempt, resetVcpuState, setInterruptPending,
  VcpuState, W,
} from '../arch/riscv/vcpu-state.js';
import { VIRT } from '../arch/riscv/virt-machine.js';
import { Accounting } from './accounting.js';
import { Affinity, checkHardAffinity } from './affinity.js';
import { Cpupool, CpupoolRegistry } from './cpupool.js';
import { Credit2 } from './credit2.js';
import { PcpuPool, type Pcpus } from './pcpu-pool.js';
import { Rtds } from './rtds.js';
import { NullSched } from './null.js';
import type { PcpuView } from './scheduler.js';
import { SchedDomain } from './sched-domain.js';
import { FLAG, exitNeedsMainThread, nowMs, type DomainDescriptor, type FromWorker, type SliceReport } from './slice-protocol.js';
import { Vcpu } from './vcpu.js';
import { ConsoleInputRing } from './console-input.js';
import { newConsoleCounter } from './console-order.js';

export type HypercallResult = bigint | number;

/** What the hypervisor core provides for exits that need the main thread. */
export interface SchedHooks {
  /** A Xen hypercall (a6 = op, a0..a5 = args) other than sched_op yield/block. Return Xen's value; throw XenError for -errno. */
  onHypercall(domid: number, vcpu: number, call: { op: number; args: bigint[] }): HypercallResult | Promise<HypercallResult>;
  /** An MMIO access to a device the hypervisor does not emulate (HVM; later an ioreq to the stub domain). Return the read value. */
  onMmio?(domid: number, vcpu: number, access: MmioRequest): HypercallResult | Promise<HypercallResult>;
  /** Console bytes from SBI DBCN / legacy putchar. */
  onConsole?(domid: number, bytes: Uint8Array): void;
  /** The guest powered off, rebooted or crashed; its vCPUs are stopped. */
  onShutdown?(domid: number, reason: { kind: 'poweroff' | 'reboot' | 'crash'; code: number; vcpu: number }): void;
}

export interface VcpuSchedulerOptions {
  /** Number of pCPU worker threads (`--pcpus N`); default os.availableParallelism(). */
  pcpus?: number;
  /** Scheduler of Pool-0 (Xen's `sched=`); default credit2. */
  scheduler?: SchedulerName;
  /** credit2 runqueues (Xen's `credit2_runqueue=`): 'all' (one per pool, default) or 'cpu' (one per pCPU, load-balanced). */
  credit2Runqueue?: 'all' | 'cpu';
  hooks: SchedHooks;
  /**
   * The pCPUs behind the mailboxes; default the piscina worker threads.  A
   * test passes its own to play a pCPU step by step (the timing races between
   * the main thread and a worker are otherwise left to the OS).
   */
  pcpuPool?: (size: number, onMessage: (pcpu: number, m: FromWorker) => void) => Pcpus;
}

export interface DomainSchedConfig {
  vcpus: number;
  /** Guest RAM, shared with the pCPU workers (never copied). */
  ram: SharedArrayBuffer;
  /** Guest-physical address of ram[0]; default 0x8000_0000 (virt DRAM). */
  ramBase?: number;
  /** Entry point: PVH kernel entry (S-mode) or HVM firmware (M-mode). */
  entry: bigint | number;
  /** a1 at entry: the device tree's guest-physical address. */
  dtb: bigint | number;
  kind: 'pvh' | 'hvm';
  weight?: number;
  cap?: number;
  pool?: string;
  /** Hard / soft affinity for every vCPU (xl.cfg cpus= / cpus_soft=). */
  cpus?: CpuList;
  cpus_soft?: CpuList;
  /** Start paused (Xen creates domains paused; libxl unpauses when the build is done). Default false. */
  paused?: boolean;
  /** HVM: the guest's ioreq page (common/ioreq-page.ts); without it every device access exits. */
  ioreqPage?: SharedArrayBuffer;
}

interface PcpuSlot {
  /** The vCPU the worker runs (or extends). */
  running: Vcpu | undefined;
  /** Since when (absolute ms) the worker runs it without a report: that time is not charged yet. */
  runningSince: number;
  /** ns of that stretch already charged in advance at a pick (deducted from the report that covers it). */
  precharged: number;
  /** Posted, not yet acknowledged by a report. */
  outstanding: { seq: number; vcpu: Vcpu } | undefined;
}

const NS_PER_MS = 1e6;
const nowNs = (): number => performance.now() * NS_PER_MS;

export class VcpuScheduler implements PcpuView {
  readonly nrPcpus: number;
  readonly pools: CpupoolRegistry;
  readonly accounting: Accounting;
  /** Wake-up latencies (us): interrupt injected into a blocked vCPU -> that vCPU running on a pCPU. */
  readonly wakeLatenciesUs: number[] = [];
  private readonly hooks: SchedHooks;
  private readonly pcpus: Pcpus;
  private readonly slots: PcpuSlot[];
  private readonly domains = new Map<number, SchedDomain>();
  private readonly poolTimers = new Map<Cpupool, { at: number; timer: NodeJS.Timeout }>();
  /** Waiters for vCPUs to leave their pCPUs; each returns true once satisfied. */
  private offCpuWaiters: (() => boolean)[] = [];
  private readyCount = 0;
  private readyWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(opts: VcpuSchedulerOptions) {
    this.nrPcpus = opts.pcpus ?? PcpuPool.defaultSize();
    this.hooks = opts.hooks;
    const onMessage = (p: number, m: FromWorker): void => this.onMessage(p, m);
    this.pcpus = opts.pcpuPool ? opts.pcpuPool(this.nrPcpus, onMessage) : new PcpuPool(this.nrPcpus, onMessage);
    this.slots = Array.from({ length: this.nrPcpus }, () => ({ running: undefined, runningSince: 0, precharged: 0, outstanding: undefined }));
    this.accounting = new Accounting(this.nrPcpus);
    this.pools = new CpupoolRegistry(this, this.nrPcpus, opts.credit2Runqueue);
    const pool0 = this.pools.create('Pool-0', opts.scheduler ?? DEFAULT_SCHEDULER);
    for (let p = 0; p < this.nrPcpus; p++) pool0.sched.addPcpu(p);
  }

  /** Create the scheduler and wait until every pCPU thread is up. */
  static async create(opts: VcpuSchedulerOptions): Promise<VcpuScheduler> {
    const s = new VcpuScheduler(opts);
    await s.ready();
    return s;
  }

  /** Resolves when every pCPU worker thread has started (the first start of a thread takes ~100 ms). */
  ready(): Promise<void> {
    if (this.readyCount >= this.nrPcpus) return Promise.resolve();
    return new Promise((r) => this.readyWaiters.push(r));
  }

  /** Stop every pCPU worker (piscina pool destroyed); the scheduler is unusable afterwards. */
  async destroy(): Promise<void> {
    this.stopped = true;
    for (let p = 0; p < this.nrPcpus; p++) {
      const cur = this.current(p);
      if (cur) requestPreempt(cur.state);
    }
    for (const t of this.poolTimers.values()) clearTimeout(t.timer);
    for (const d of this.domains.values()) {
      d.dying = true;
      for (const v of d.vcpus) v.waitToken++;
    }
    await this.pcpus.destroy();
  }

  // ================================================================ PcpuView

  current(p: number): Vcpu | undefined {
    const s = this.slots[p]!;
    return s.outstanding?.vcpu ?? s.running;
  }

  idle(p: number): boolean {
    const s = this.slots[p]!;
    return !s.running && !s.outstanding;
  }

  // ================================================================ domains

  addDomain(domid: number, cfg: DomainSchedConfig): void {
    if (this.domains.has(domid)) throw new XenError('EEXIST', `domain ${domid} already has vCPUs`);
    if (!Number.isInteger(cfg.vcpus) || cfg.vcpus < 1 || cfg.vcpus > 64) throw new XenError('EINVAL', `vcpus ${cfg.vcpus}: need 1..64`);
    const pool = this.pools.get(cfg.pool ?? 'Pool-0');
    if (cfg.cpus) checkHardAffinity(cfg.cpus, pool.cpus);
    const clint = new Clint();
    const plic = new Plic();
    const pvh = cfg.kind === 'pvh';
    const states = Array.from({ length: cfg.vcpus }, (_, i) => {
      const s = VcpuState.create(i);
      resetVcpuState(s, BigInt(cfg.entry), pvh ? PRIV.S : PRIV.M, pvh);
      s.setReg(10, i);
      s.setReg(11, BigInt(cfg.dtb));
      // PVH secondaries wait stopped for SBI HSM hart_start; HVM firmware starts every hart (hart lottery).
      if (pvh && i > 0) s.i32[W.HSM] = 1;
      plic.attach(s);
      return s;
    });
    const desc: DomainDescriptor = {
      domid, kind: cfg.kind, ram: cfg.ram, ramBase: cfg.ramBase ?? VIRT.DRAM, vcpus: states.map((s) => s.sab), clint: clint.sab, plic: plic.sab,
      consoleIn: new ConsoleInputRing().sab,
      consoleSeq: newConsoleCounter(),
      ...(cfg.ioreqPage ? { ioreqPage: cfg.ioreqPage } : {}),
    };
    const d = new SchedDomain(domid, desc, plic, pool, cfg.weight ?? CREDIT2_WEIGHT_DEFAULT, cfg.cap ?? 0);
    d.vcpus = states.map((s, i) => new Vcpu(d, i, s));
    d.pauseCount = cfg.paused ? 1 : 0;
    for (const v of d.vcpus) {
      v.affinity = new Affinity(cfg.cpus, cfg.cpus_soft);
      if (pvh && v.id > 0) v.down = 'hsm';
    }
    this.domains.set(domid, d);
    this.joinPool(d, pool);
    if (cfg.weight !== undefined || cfg.cap) this.setCredit2(domid, { weight: cfg.weight, cap: cfg.cap });
  }

  hasDomain(domid: number): boolean {
    return this.domains.has(domid);
  }

  /** Keyboard input for a guest's SBI console; returns how many bytes fitted. */
  consoleInput(domid: number, bytes: Uint8Array): number {
    return new ConsoleInputRing(this.domain(domid).desc.consoleIn).push(bytes);
  }

  /** Destroy: stop every vCPU, wait until none is on a pCPU, forget the domain. */
  async removeDomain(domid: number): Promise<void> {
    const d = this.domain(domid);
    d.dying = true;
    this.stopAll(d);
    await this.offCpu(d);
    const pool = d.pool;
    this.leavePool(d);
    for (const ch of this.pcpus.channels) ch.forgetDomain(domid);
    this.domains.delete(domid);
    // Its pCPUs may now serve someone who waited (null's waitqueue, parked work).
    for (const p of pool.cpus) if (this.idle(p)) this.reschedule(p, undefined);
  }

  /**
   * The domain's guest RAM changed size (populate_physmap, mem-set, a grown
   * growable SharedArrayBuffer): every pCPU rebuilds its view of the domain
   * before it next runs one of its vCPUs.
   */
  memoryChanged(domid: number): void {
    this.domain(domid);
    for (const ch of this.pcpus.channels) ch.forgetDomain(domid);
  }

  /** XEN_DOMCTL_pausedomain: counted; resolves when no vCPU of the domain is on a pCPU (vcpu_sleep_sync). */
  async pauseDomain(domid: number): Promise<void> {
    const d = this.domain(domid);
    d.pauseCount++;
    this.stopAll(d);
    await this.offCpu(d);
  }

  unpauseDomain(domid: number): void {
    const d = this.domain(domid);
    if (d.pauseCount === 0) throw new XenError('EINVAL', `domain ${domid} is not paused`);
    if (--d.pauseCount === 0) for (const v of d.vcpus) this.makeRunnable(v);
  }

  /** `xl vcpu-set`: vCPUs >= online go offline; those below come back (PVH ones not yet started stay down until hart_start). */
  setVcpusOnline(domid: number, online: number): void {
    const d = this.domain(domid);
    if (!Number.isInteger(online) || online < 1 || online > d.vcpus.length)
      throw new XenError('EINVAL', `online vCPUs ${online}: need 1..${d.vcpus.length}`);
    for (const v of d.vcpus) {
      if (v.id >= online && v.down !== 'admin') {
        v.down = 'admin';
        v.waitToken++;
        this.stopVcpu(v);
      } else if (v.id < online && v.down === 'admin') {
        v.down = Atomics.load(v.state.i32, W.HSM) === 1 ? 'hsm' : undefined;
        if (v.down) this.watch(v);
        else this.makeRunnable(v);
      }
    }
  }

  /** `xl vcpu-pin` / XEN_DOMCTL_setvcpuaffinity. */
  setAffinity(domid: number, vcpu: number | 'all', aff: { hard?: CpuList; soft?: CpuList }): void {
    const d = this.domain(domid);
    if (aff.hard) checkHardAffinity(aff.hard, d.pool.cpus);
    for (const v of vcpu === 'all' ? d.vcpus : [this.vcpu(d, vcpu)]) {
      const hard = aff.hard ?? (v.affinity.hard ? [...v.affinity.hard] : 'all');
      const soft = aff.soft ?? (v.affinity.soft ? [...v.affinity.soft] : 'all');
      v.affinity = new Affinity(hard, soft);
      if (v.onCpu && !v.affinity.allows(v.pcpu)) requestPreempt(v.state);
      this.tickle(d.pool.sched.affinityChanged(v));
    }
  }

  /** Raise (or lower) an interrupt line of a vCPU (event-channel upcall, IPI, timer); wakes it at once if it waits. */
  injectInterrupt(domid: number, vcpu: number, irq: number, level = true): void {
    const v = this.vcpu(this.domain(domid), vcpu);
    setInterruptPending(v.state, irq, level);
    if (level && v.blocked === 'wfi' && this.interruptPending(v)) this.wakeUp(v, true);
  }

  /** Set a PLIC source of an HVM guest (a device model's interrupt line). */
  setIrqLine(domid: number, source: number, level: boolean): void {
    this.domain(domid).plic.setLevel(source, level);
    for (const v of this.domain(domid).vcpus) if (v.blocked === 'wfi' && this.interruptPending(v)) this.wakeUp(v, true);
  }

  /** The epoch of a domain's mtime (its CLINT's, ms, timeOrigin-based): rdtime counts from it. */
  clockEpochMs(domid: number): number {
    return Clint.epochOf(this.domain(domid).desc.clint);
  }

  /** A vCPU's architectural state (registers, CSRs) — shared memory, read it from any thread. */
  vcpuState(domid: number, vcpu: number): VcpuState {
    return this.vcpu(this.domain(domid), vcpu).state;
  }

  // ================================================================ parameters

  getCredit2(domid: number): Credit2Params {
    const d = this.domain(domid);
    return this.credit2Of(d).getParams(d);
  }

  /** `xl sched-credit2 -d D -w W -c C`: weight 0 / undefined = unchanged. */
  setCredit2(domid: number, p: Partial<Credit2Params>): void {
    const d = this.domain(domid);
    this.tickle(this.credit2Of(d).setParams(d, p, nowNs()));
    this.armPoolTimer(d.pool);
  }

  getRtds(domid: number): RtdsVcpuParams[] {
    const d = this.domain(domid);
    const s = this.rtdsOf(d);
    return d.vcpus.map((v) => s.getParams(v));
  }

  /** `xl sched-rtds -d D -v V|all -p P -b B -e 0|1` (us). */
  setRtds(domid: number, vcpu: number | 'all', p: Partial<Omit<RtdsVcpuParams, 'vcpu'>>): void {
    const d = this.domain(domid);
    const s = this.rtdsOf(d);
    for (const v of vcpu === 'all' ? d.vcpus : [this.vcpu(d, vcpu)]) s.setParams(v, p, nowNs());
    this.armPoolTimer(d.pool);
  }

  /** `xl sched-credit2 -s -p POOL [-r us]`. */
  poolParams(pool: string, set?: Partial<PoolSchedParams>): PoolSchedParams & { sched: SchedulerName } {
    const s = this.pools.get(pool).sched;
    if (set?.ratelimit_us !== undefined) {
      if (!(s instanceof Credit2)) throw new XenError('EINVAL', `cpupool ${pool} runs ${s.name}, which has no ratelimit`);
      s.setRatelimitUs(set.ratelimit_us);
    }
    return { sched: s.name, ratelimit_us: s instanceof Credit2 ? s.ratelimitUs : 0 };
  }

  // ================================================================ cpupools

  cpupoolCreate(name: string, sched: SchedulerName = DEFAULT_SCHEDULER, cpus: number[] = []): number {
    const pool = this.pools.create(name, sched);
    try {
      for (const c of cpus) this.cpupoolCpuAdd(name, c);
    } catch (e) {
      this.pools.destroy(name);
      throw e;
    }
    return pool.poolid;
  }

  cpupoolDestroy(name: string): void {
    this.pools.destroy(name);
  }

  cpupoolRename(name: string, newName: string): void {
    this.pools.rename(name, newName);
  }

  cpupoolCpuAdd(name: string, pcpu: number): void {
    this.pools.addCpu(name, pcpu);
    if (this.idle(pcpu)) this.reschedule(pcpu, undefined);
  }

  cpupoolCpuRemove(name: string, pcpu: number): void {
    const pool = this.pools.removeCpu(name, pcpu);
    const cur = this.current(pcpu);
    if (cur) requestPreempt(cur.state);
    // vCPUs that may now only run elsewhere, or nowhere: their affinity is re-evaluated by the pool's scheduler.
    for (const d of pool.domains) for (const v of d.vcpus) this.tickle(pool.sched.affinityChanged(v));
  }

  /** `xl cpupool-migrate`: pause, move every vCPU to the new pool's scheduler, unpause. */
  async cpupoolMigrate(domid: number, name: string): Promise<void> {
    const d = this.domain(domid);
    const to = this.pools.get(name);
    if (to === d.pool) return;
    if (to.cpus.length === 0) throw new XenError('EINVAL', `cpupool ${name} has no pCPUs`);
    await this.pauseDomain(domid);
    // Destroyed while we waited for its vCPUs to leave their pCPUs: it has left its pool for good.
    if (this.domains.get(domid) !== d) throw new XenError('ESRCH', `domain ${domid} was destroyed while it moved to cpupool ${name}`);
    // The pool may have been destroyed or emptied meanwhile: then the domain stays where it was.
    if (![...this.pools.pools.values()].includes(to) || to.cpus.length === 0) {
      this.unpauseDomain(domid);
      throw new XenError('ENOENT', `cpupool ${name} was destroyed or lost its pCPUs while domain ${domid} moved to it`);
    }
    this.leavePool(d);
    this.joinPool(d, to);
    this.unpauseDomain(domid);
  }

  // ================================================================ what xl shows

  /** `xl vcpu-list [domid]`. */
  vcpuList(domid?: number): VcpuInfo[] {
    const out: VcpuInfo[] = [];
    const all = Array.from({ length: this.nrPcpus }, (_, i) => i);
    for (const d of [...this.domains.values()].sort((a, b) => a.domid - b.domid)) {
      if (domid !== undefined && d.domid !== domid) continue;
      for (const v of d.vcpus)
        out.push({
          domid: d.domid, vcpu: v.id, online: v.down === undefined, state: v.runState,
          cpu: v.onCpu ? v.pcpu : v.lastPcpu, cpuTimeNs: v.cpuTimeNs,
          hard: v.affinity.hardList(all), soft: v.affinity.softList(all),
        });
    }
    if (domid !== undefined && out.length === 0) throw new XenError('ESRCH', `no domain ${domid}`);
    return out;
  }

  /** Per-domain CPU time (`xl top`, getdomaininfo's cpu_time). */
  domainCpuInfo(): DomainCpuInfo[] {
    return [...this.domains.values()].map((d) => ({
      domid: d.domid, cpuTimeNs: d.cpuTimeNs, vcpus: d.vcpus.length, vcpusOnline: d.vcpus.filter((v) => !v.down).length,
      pool: d.pool.name, contextSwitches: d.contextSwitches,
    }));
  }

  /** `xl cpupool-list [-c]`. */
  cpupoolList(): CpupoolInfo[] {
    return [...this.pools.pools.values()].sort((a, b) => a.poolid - b.poolid).map((p) => ({
      poolid: p.poolid, name: p.name, sched: p.sched.name, cpus: p.cpus, domains: [...p.domains].map((d) => d.domid),
    }));
  }

  /** A domain's scheduler parameters, whatever its pool runs (domctl.scheduler_op.getinfo). */
  schedInfo(domid: number): { sched: 'credit2'; params: Credit2Params } | { sched: 'rtds'; vcpus: RtdsVcpuParams[] } | { sched: 'null' } {
    const d = this.domain(domid);
    const s = d.pool.sched;
    if (s instanceof Credit2) return { sched: 'credit2', params: s.getParams(d) };
    if (s instanceof Rtds) return { sched: 'rtds', vcpus: this.getRtds(domid) };
    return { sched: 'null' };
  }

  // ================================================================ internals: membership

  private domain(domid: number): SchedDomain {
    const d = this.domains.get(domid);
    if (!d) throw new XenError('ESRCH', `no domain ${domid} in the scheduler`);
    return d;
  }

  private vcpu(d: SchedDomain, id: number): Vcpu {
    const v = d.vcpus[id];
    if (!v) throw new XenError('EINVAL', `domain ${d.domid} has no vCPU ${id}`);
    return v;
  }

  private credit2Of(d: SchedDomain): Credit2 {
    const s = d.pool.sched;
    if (!(s instanceof Credit2)) throw new XenError('EINVAL', `domain ${d.domid} is in cpupool ${d.pool.name}, which runs ${s.name}, not credit2`);
    return s;
  }

  private rtdsOf(d: SchedDomain): Rtds {
    const s = d.pool.sched;
    if (!(s instanceof Rtds)) throw new XenError('EINVAL', `domain ${d.domid} is in cpupool ${d.pool.name}, which runs ${s.name}, not rtds`);
    return s;
  }

  private joinPool(d: SchedDomain, pool: Cpupool): void {
    d.pool = pool;
    pool.domains.add(d);
    pool.sched.addDomain(d);
    for (const v of d.vcpus) pool.sched.insertVcpu(v);
    if (pool.sched instanceof Credit2 && (d.weight !== CREDIT2_WEIGHT_DEFAULT || d.cap)) pool.sched.setParams(d, { weight: d.weight, cap: d.cap }, nowNs());
    for (const v of d.vcpus) {
      if (v.down === 'hsm') this.watch(v);
      else this.makeRunnable(v);
    }
  }

  private leavePool(d: SchedDomain): void {
    for (const v of d.vcpus) d.pool.sched.removeVcpu(v);
    d.pool.sched.removeDomain(d);
    d.pool.domains.delete(d);
  }

  /** Take every vCPU of d off its pCPU / queue (it stays in its state otherwise). */
  private stopAll(d: SchedDomain): void {
    for (const v of d.vcpus) this.stopVcpu(v);
  }

  private stopVcpu(v: Vcpu): void {
    if (!v.onCpu) return v.dom.pool.sched.sleep(v);
    const p = v.pcpu;
    const slot = this.slots[p]!;
    if (slot.outstanding?.vcpu === v && this.pcpus.channels[p]!.retract()) {
      // Handed over but not taken yet: take it back.
      slot.outstanding = undefined;
      if (slot.running === v) {
        // ...but the worker is still running it (an extension): its report takes it off the pCPU.
        requestPreempt(v.state);
        return;
      }
      v.pcpu = -1;
      v.dom.pool.sched.sleep(v);
      if (!slot.running) this.reschedule(p, undefined);
      return;
    }
    requestPreempt(v.state);
  }

  private offCpu(d: SchedDomain): Promise<void> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        if (d.vcpus.some((v) => v.onCpu)) return false;
        resolve();
        return true;
      };
      if (!check()) this.offCpuWaiters.push(check);
    });
  }

  // ================================================================ internals: wake / block

  private interruptPending(v: Vcpu): boolean {
    return (Atomics.load(v.state.i32, W.MIP) & v.state.csrLo(CSR_SLOT.mie)) !== 0;
  }

  /** v may have become runnable: queue it and reschedule where the scheduler says. */
  private makeRunnable(v: Vcpu): void {
    if (!v.runnable || v.onCpu) return;
    const pool = v.dom.pool;
    this.tickle(pool.sched.wake(v, nowNs()));
    this.armPoolTimer(pool);
  }

  /** Reschedule pCPUs a scheduler tickled: an idle one picks now, a busy one is preempted (it reports, then picks). */
  private tickle(pcpus: number[]): void {
    for (const p of pcpus) {
      const slot = this.slots[p]!;
      if (this.idle(p)) this.reschedule(p, undefined);
      else if (!slot.outstanding) requestPreempt(slot.running!.state);
      // A decision still in the mailbox is redone; one the worker already took is preempted.
      else if (this.takeBack(p, nowNs())) this.reschedule(p, undefined);
      else requestPreempt(slot.outstanding.vcpu.state);
    }
  }

  /** Wait (without a pCPU) until a blocked or HSM-stopped vCPU has a reason to run: KICK is notified by every interrupt source. */
  private watch(v: Vcpu): void {
    const token = ++v.waitToken;
    Atomics.store(v.state.i32, W.KICK, 0);
    if (this.wakeCondition(v)) return this.wakeUp(v, false);
    const timeout = v.blocked === 'wfi' && v.timerAt !== Infinity ? Math.max(0, v.timerAt - nowMs()) : undefined;
    const r = waitAsync(v.state.i32, W.KICK, 0, timeout);
    const settle = (res: string): void => {
      if (v.waitToken !== token) return;
      if (res === 'timed-out' || this.wakeCondition(v)) this.wakeUp(v, false);
      else this.watch(v);
    };
    if (r.async) void r.value.then(settle);
    else settle(r.value);
  }

  private wakeCondition(v: Vcpu): boolean {
    if (v.down === 'hsm') return Atomics.load(v.state.i32, W.HSM) !== 1;
    if (v.blocked === 'wfi') return this.interruptPending(v);
    return false;
  }

  private wakeUp(v: Vcpu, injected: boolean): void {
    v.waitToken++;
    if (v.down === 'hsm') v.down = undefined;
    if (v.blocked === 'wfi') v.blocked = undefined;
    v.timerAt = Infinity;
    if (injected && !v.wokenAt) v.wokenAt = nowMs();
    // Whatever else was requested while it slept (flushes) must be seen at its first poll.
    Atomics.store(v.state.i32, W.KICK, 1);
    this.makeRunnable(v);
  }

  /** The main thread finished what v was blocked on (a hypercall, an MMIO access). */
  private unblock(v: Vcpu): void {
    v.blocked = undefined;
    this.makeRunnable(v);
  }

  // ================================================================ internals: slices

  private onMessage(p: number, m: FromWorker): void {
    if (this.stopped) return;
    if (m.kind === 'ready') {
      if (++this.readyCount === this.nrPcpus) for (const r of this.readyWaiters.splice(0)) r();
      return;
    }
    if (m.kind === 'hsm') {
      const d = this.domains.get(m.domid);
      for (const v of d?.vcpus ?? []) if (v.down === 'hsm' && this.wakeCondition(v)) this.wakeUp(v, false);
      return;
    }
    this.onSlice(p, m);
  }

  private onSlice(p: number, r: SliceReport): void {
    const slot = this.slots[p]!;
    const v = this.domains.get(r.domid)?.vcpus[r.vcpu];
    let took: Vcpu | undefined;
    if (slot.outstanding && r.tookSeq === slot.outstanding.seq) {
      took = slot.outstanding.vcpu;
      slot.outstanding = undefined;
    }
    if (v) this.account(p, v, r, slot);
    // What the worker runs from now on.  After 'wait' it runs nothing until it takes an assignment
    // posted meanwhile.  That one stays outstanding, not running: either the worker's next report
    // says it took it, or we retract it, and then nothing would ever report its vCPU off this pCPU.
    let now: Vcpu | undefined;
    if (r.next === 'took') now = took;
    else if (r.next === 'extend') now = v;
    const posted = slot.outstanding?.vcpu;
    slot.running = now;
    slot.runningSince = r.endedAt || nowMs();
    if (took && took !== now) took.pcpu = -1; // declined: it must see us first
    if (v && v !== now && v !== posted && v.pcpu === p) v.pcpu = -1;
    let prev: Vcpu | undefined;
    if (v) {
      this.handleExit(v, r);
      // This report's exit is handled (a hook still running clears it when it settles). Only a
      // report that carries an exit may clear the flag: an older report (an extension that ran
      // out of budget) must not clear the flag a later exit of the same vCPU has already set.
      if (exitNeedsMainThread(r.reason) && v.blocked !== 'hypercall' && v.blocked !== 'mmio') clearExitPending(v.state);
      if (v.runnable && !v.onCpu) {
        if (!now && !posted) prev = v; // the pCPU is free and v may just go on
        else this.makeRunnable(v);
      }
    }
    if (r.next === 'extend') this.reschedule(p, v && v.runnable ? v : undefined);
    else if (this.idle(p)) this.reschedule(p, prev);
    if (this.offCpuWaiters.length) {
      this.offCpuWaiters = this.offCpuWaiters.filter((check) => !check());
    }
  }

  private account(p: number, v: Vcpu, r: SliceReport, slot: PcpuSlot): void {
    if (r.ranNs > 0) {
      this.accounting.ran(p, v, r.ranNs, r.executed);
      // Part of this run may have been charged already when a decision was taken while it ran.
      const pre = Math.min(slot.precharged, r.ranNs);
      slot.precharged = 0;
      if (r.ranNs - pre > 0) v.dom.pool.sched.charge(v, r.ranNs - pre, nowNs());
    }
    if (v.wokenAt && r.ranNs > 0) {
      this.wakeLatenciesUs.push((r.startedAt - v.wokenAt) * 1000);
      if (this.wakeLatenciesUs.length > 10_000) this.wakeLatenciesUs.splice(0, 5_000);
      v.wokenAt = 0;
    }
    if (r.console?.length) for (const bytes of v.dom.consoleOrder.add(r.console)) this.hooks.onConsole?.(v.dom.domid, bytes);
  }

  /** What pCPU p runs next; posts it to the worker (preempting the extension of the vCPU still there). */
  private reschedule(p: number, prev: Vcpu | undefined): void {
    if (this.stopped) return;
    const slot = this.slots[p]!;
    const extending = slot.running;
    const pool = this.pools.poolOfCpu(p);
    if (!pool) {
      if (extending) requestPreempt(extending.state);
      return;
    }
    const now = nowNs();
    if (slot.outstanding && !this.takeBack(p, now)) return; // the worker has it already; its report comes next
    const prevV = prev ?? (extending?.runnable ? extending : undefined);
    // Time the running vCPU has used since its last report is charged now, as Xen burns credit in schedule().
    let inflight = 0;
    if (prevV && prevV === extending && slot.runningSince) {
      inflight = Math.max(0, (nowMs() - slot.runningSince) * NS_PER_MS - slot.precharged);
      slot.precharged += inflight;
    }
    const dec = pool.sched.pick(p, now, prevV, inflight);
    this.armPoolTimer(pool);
    // A vCPU pinned away from p (vcpu-pin) went back to its runqueue: a pCPU it may run on must come and get it.
    if (prevV && dec.vcpu !== prevV && !prevV.affinity.allows(p)) this.tickle(pool.cpus.filter((q) => q !== p && prevV.affinity.allows(q) && this.idle(q)));
    if (!dec.vcpu) {
      if (extending) requestPreempt(extending.state);
      return;
    }
    const v = dec.vcpu;
    const ch = this.pcpus.channels[p]!;
    ch.ensureDomain(v.dom.desc);
    const fresh = v.lastPcpu !== p;
    const seq = ch.post({
      domid: v.dom.domid, vcpu: v.id, sliceNs: dec.sliceNs,
      flags: (dec.mayExtend ? FLAG.MAY_EXTEND : 0) | (fresh ? FLAG.FRESH : 0),
    });
    slot.outstanding = { seq, vcpu: v };
    if (!extending) slot.runningSince = nowMs();
    // A vCPU that just goes on keeps its stint start (ratelimit counts from when it got the pCPU).
    if (v !== prevV) v.runStart = now;
    v.pcpu = p;
    v.lastPcpu = p;
    // The vCPU being extended stays on this pCPU (v.pcpu) until its report says it stopped, so no
    // other pCPU can pick it up while it still runs here.
    if (extending) requestPreempt(extending.state);
  }

  /**
   * Retract an assignment the worker has not taken (a newer decision replaces
   * it; happens when the main thread lags the worker).  Its vCPU goes back to
   * its scheduler.  False if the worker took it already.
   */
  private takeBack(p: number, now: number): boolean {
    const slot = this.slots[p]!;
    const x = slot.outstanding!.vcpu;
    if (!this.pcpus.channels[p]!.retract()) return false;
    slot.outstanding = undefined;
    if (x === slot.running) return true; // it is still running there (extension): it stays prev
    x.pcpu = -1;
    if (x.runnable) this.tickle(x.dom.pool.sched.wake(x, now).filter((q) => q !== p));
    return true;
  }

  private armPoolTimer(pool: Cpupool): void {
    const now = nowNs();
    const at = pool.sched.nextEvent(now);
    const cur = this.poolTimers.get(pool);
    if (cur && cur.at === at) return;
    if (cur) clearTimeout(cur.timer);
    this.poolTimers.delete(pool);
    if (at === undefined) return;
    const timer = setTimeout(() => {
      this.poolTimers.delete(pool);
      this.tickle(pool.sched.onTimer(nowNs()));
      this.armPoolTimer(pool);
    }, Math.max(0, (at - now) / NS_PER_MS));
    this.poolTimers.set(pool, { at, timer });
  }

  // ================================================================ internals: exits

  private handleExit(v: Vcpu, r: SliceReport): void {
    switch (r.reason) {
      case 'wfi':
        v.blocked = 'wfi';
        v.timerAt = r.timerNs === Infinity ? Infinity : r.endedAt + r.timerNs / NS_PER_MS;
        this.watch(v);
        return;
      case 'stopped':
        v.down = 'hsm';
        this.watch(v);
        return;
      case 'hypercall':
        this.serveHypercall(v);
        return;
      case 'mmio':
        this.serveMmio(v, r.mmio!);
        return;
      case 'shutdown':
        this.shutdown(v, r.shutdown?.kind ?? 'poweroff', r.shutdown?.code ?? 0);
        return;
      case 'fault':
        this.shutdown(v, 'crash', 1);
        return;
      default:
        return;
    }
  }

  private shutdown(v: Vcpu, kind: 'poweroff' | 'reboot' | 'crash', code: number): void {
    const d = v.dom;
    if (d.shutdown) return;
    d.shutdown = true;
    this.stopAll(d);
    this.hooks.onShutdown?.(d.domid, { kind, code, vcpu: v.id });
  }

  /** sched_op yield/block are the scheduler's own; everything else goes to the hypervisor core. */
  private serveHypercall(v: Vcpu): void {
    const call = hypercallOf(v.state);
    if (call.op === XEN_HYPERCALL.sched_op) {
      const cmd = Number(call.args[0]);
      if (cmd === SCHEDOP.yield) {
        completeHypercallState(v.state, 0);
        v.yielded = true;
        return;
      }
      if (cmd === SCHEDOP.block) {
        // do_block: sleep until an event (interrupt) is pending.
        completeHypercallState(v.state, 0);
        v.blocked = 'wfi';
        v.timerAt = Infinity;
        this.watch(v);
        return;
      }
    }
    this.complete(v, 'hypercall', () => this.hooks.onHypercall(v.dom.domid, v.id, call), (val) => completeHypercallState(v.state, val));
  }

  private serveMmio(v: Vcpu, access: MmioRequest): void {
    const hook = this.hooks.onMmio;
    this.complete(v, 'mmio', () => (hook ? hook(v.dom.domid, v.id, access) : access.write ? 0 : -1), (val) => completeMmioState(v.state, val));
  }

  /** Run a hook; a synchronous answer lets v go on at once, a promise blocks it until settled. */
  private complete(v: Vcpu, why: 'hypercall' | 'mmio', call: () => HypercallResult | Promise<HypercallResult>, done: (val: HypercallResult) => void): void {
    let res: HypercallResult | Promise<HypercallResult>;
    try {
      res = call();
    } catch (e) {
      res = errnoResult(e);
    }
    if (typeof res === 'object' && res !== null && 'then' in res) {
      v.blocked = why;
      res.then(
        (val) => { done(val); clearExitPending(v.state); this.unblock(v); },
        (e: unknown) => { done(errnoResult(e)); clearExitPending(v.state); this.unblock(v); },
      );
    } else done(res);
  }
}

/** Atomics.waitAsync (Node 16+; ES2024 lib typing not enabled in this workspace). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, i: number, v: number, t?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}).waitAsync;

/** A thrown XenError becomes Xen's -errno return value. */
function errnoResult(e: unknown): number {
  return e instanceof XenError ? -XEN_ERRNO[e.errno] : -XEN_ERRNO.EINVAL;
}

export { NullSched, Rtds, Credit2 };
