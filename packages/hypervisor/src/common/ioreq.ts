/**
 * ioreq servers: the hypervisor's side of HVM device models (DESIGN §10;
 * Xen's xen/common/ioreq.c and xen/arch/x86/hvm/dm.c; the ABI is
 * packages/abi/src/ioreq.ts).
 *
 * One server per HVM guest, run by its stub domain or by dom0.  A guest MMIO
 * access in a range the server claimed arrives here from the scheduler
 * (GuestVcpus' onMmio) when the pCPU could not serve it from the guest's
 * ioreq page (a mirrored register, a posted write): it goes to the server as
 * an `hvm.ioreq` event, preceded by every write still buffered in the page
 * (as ioreq.c's handle_buffered_io is drained before a synchronous request
 * is handled), and the vCPU stays blocked until `hvm.ioreq_server.complete`.
 * Buffered writes are also drained when a worker rings the page's doorbell.
 *
 * If the server's domain dies, its guest cannot run on: the guest is crashed
 * (its toolstack applies on_crash).  If the guest goes, the server is told
 * (`hvm.ioreq_server.destroyed`).
 */
import {
  IOREQ_MAX_MIRRORS,
  IOREQ_MAX_RANGES,
  SHUTDOWN_REASONS,
  XenError,
  argBytes,
  argDomId,
  argEnum,
  argInt,
  argObject,
  type DomId,
  type IoreqRange,
  type IoreqServerInfo,
  type MirrorReg,
} from '@xenbox/abi';
import type { MmioRequest } from '../arch/riscv/hart.js';
import type { Hypervisor } from '../hypervisor.js';
import type { Domain } from './domain.js';
import type { CallContext, HypercallTable } from './hypercall-table.js';
import { IoreqPage } from './ioreq-page.js';
import { targetDomain } from './xsm.js';

/** A 32-bit address space is all the virt board's devices need. */
const ADDR_MAX = 0xffff_ffff;
/** Console bytes per hvm.console_output call. */
const CONSOLE_MAX = 64 * 1024;
/** What a read of an unclaimed address returns: all ones, as an open bus (Xen's hvmemul for unhandled reads). */
const OPEN_BUS = 0xffff_ffff;

interface Server {
  target: DomId;
  server: DomId;
  peerKey: string;
  ranges: IoreqRange[];
  nextId: number;
  pending: Map<number, (value: number) => void>;
  syncRequests: number;
  bufferedWrites: number;
  bufferedBatches: number;
}

interface GuestPage {
  page: IoreqPage;
  alive: boolean;
}

const mask = (size: number, v: number): number => (size >= 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1));

export class IoreqServers {
  private readonly servers = new Map<DomId, Server>();
  private readonly pages = new Map<DomId, GuestPage>();

  constructor(private readonly hv: Hypervisor) {}

  /** The guest's ioreq page (made when its vCPUs are handed to the scheduler); a drain loop serves its doorbell. */
  pageFor(domid: DomId): IoreqPage {
    let g = this.pages.get(domid);
    if (!g) {
      g = { page: new IoreqPage(), alive: true };
      this.pages.set(domid, g);
      void this.pump(domid, g);
    }
    return g.page;
  }

  /** Posted writes reach the server in batches: one event per doorbell ring (the buffered ioreq event channel). */
  private async pump(domid: DomId, g: GuestPage): Promise<void> {
    while (g.alive) {
      await g.page.doorbell();
      if (g.alive) this.flushBuffered(domid, g.page);
    }
  }

  private flushBuffered(domid: DomId, page: IoreqPage): void {
    const buffered = page.drain();
    const s = this.servers.get(domid);
    if (!s || buffered.length === 0) return;
    s.bufferedWrites += buffered.length / 3;
    s.bufferedBatches++;
    this.hv.pushToPeer(s.peerKey, 'hvm.ioreq', { domid, buffered });
  }

  /** A vCPU's MMIO exit: forward it to the server; resolves with the read value. */
  mmio(domid: DomId, vcpu: number, access: MmioRequest): number | Promise<number> {
    const s = this.servers.get(domid);
    const page = this.pages.get(domid)?.page;
    const buffered = page ? page.drain() : [];
    if (!s || !s.ranges.some((r) => access.addr >= r.base && access.addr - r.base < r.size)) {
      if (s && buffered.length) this.hv.pushToPeer(s.peerKey, 'hvm.ioreq', { domid, buffered });
      return access.write ? 0 : mask(access.size, OPEN_BUS);
    }
    if (buffered.length) {
      s.bufferedWrites += buffered.length / 3;
      s.bufferedBatches++;
    }
    const id = ++s.nextId;
    s.syncRequests++;
    const value = access.write ? Number(BigInt.asUintN(Math.min(access.size, 8) * 8, access.value)) : 0;
    this.hv.pushToPeer(s.peerKey, 'hvm.ioreq', { domid, buffered, req: { id, vcpu, write: access.write, addr: access.addr, size: access.size, value } });
    return new Promise<number>((resolve) => s.pending.set(id, (v) => resolve(access.write ? 0 : mask(access.size, v))));
  }

  /** xenconsoled's keyboard bytes for an HVM guest go to its device model's UART. */
  consoleInput(d: Domain, data: Uint8Array): void {
    const s = this.servers.get(d.domid);
    if (!s) throw new XenError('ENODEV', `d${d.domid} has no device model serving its console yet`);
    this.hv.pushToPeer(s.peerKey, 'hvm.console_input', { domid: d.domid, data });
  }

  /** destroyDomain's hook: a dead server crashes its guest; a dead guest releases its server. */
  domainGone(d: Domain): void {
    const g = this.pages.get(d.domid);
    if (g) {
      g.alive = false;
      g.page.ring();
      this.pages.delete(d.domid);
    }
    const own = this.servers.get(d.domid);
    if (own) {
      this.drop(own);
      this.hv.pushToPeer(own.peerKey, 'hvm.ioreq_server.destroyed', { domid: d.domid, reason: `d${d.domid} was destroyed` });
    }
    for (const s of [...this.servers.values()]) {
      if (s.server !== d.domid) continue;
      this.drop(s);
      const target = this.hv.domains.get(s.target);
      if (target && !target.dying && target.shutdown === null) {
        this.hv.console.write('xen', `d${s.target}: its device model d${d.domid} is gone; crashing the domain`);
        this.hv.shutdownDomain(target, 'crash');
      }
    }
    // A stub domain lives and dies with its guest (libxl destroys the guest's device model with it).
    if (d.kind !== 'stubdom') {
      for (const stub of this.hv.domains.all()) {
        if (stub.kind === 'stubdom' && stub.target === d.domid && !stub.dying) this.hv.destroyDomain(stub.domid, `its guest d${d.domid} was destroyed`);
      }
    }
  }

  private drop(s: Server): void {
    this.servers.delete(s.target);
    this.pages.get(s.target)?.page.reset();
    // Blocked vCPUs are let go (their domain is about to stop anyway): reads see an open bus.
    for (const done of s.pending.values()) done(OPEN_BUS);
    s.pending.clear();
  }

  private serverFor(op: string, caller: Domain, domid: DomId, ctx: CallContext): Server {
    targetDomain(op, caller, this.hv.domains, domid);
    const s = this.servers.get(domid);
    if (!s) throw new XenError('ENOENT', `${op}: d${domid} has no ioreq server`);
    if (s.server !== caller.domid || s.peerKey !== ctx.peerKey) throw new XenError('EPERM', `${op}: d${caller.domid} is not d${domid}'s ioreq server`);
    return s;
  }

  private applyMirror(op: string, domid: DomId, regs: MirrorReg[]): void {
    const page = this.pages.get(domid)?.page;
    if (!page) throw new XenError('ESRCH', `${op}: d${domid} has no running vCPUs yet (set its vCPU context first)`);
    for (const r of regs) if (!page.setMirror(r.addr, r.size, r.value)) throw new XenError('ENOSPC', `${op}: at most ${IOREQ_MAX_MIRRORS} mirrored registers`);
  }

  ops(): HypercallTable {
    return {
      'hvm.ioreq_server.register': {
        priv: 'hook',
        handle: (caller, raw, ctx) => {
          const op = 'hvm.ioreq_server.register';
          const a = argObject(op, raw);
          const target = targetDomain(op, caller, this.hv.domains, argDomId(op, a));
          if (target.kind !== 'hvm') throw new XenError('EINVAL', `${op}: d${target.domid} is a ${target.kind} domain, not an HVM guest`);
          if (!caller.isProcess || caller === target) throw new XenError('EPERM', `${op}: only dom0 or d${target.domid}'s stub domain may serve its devices`);
          const ranges = argRanges(op, a.ranges);
          const old = this.servers.get(target.domid);
          if (old && old.server !== caller.domid) throw new XenError('EEXIST', `${op}: d${target.domid} is already served by d${old.server}`);
          if (old) this.drop(old);
          this.servers.set(target.domid, {
            target: target.domid, server: caller.domid, peerKey: ctx.peerKey, ranges, nextId: 0, pending: new Map(),
            syncRequests: 0, bufferedWrites: 0, bufferedBatches: 0,
          });
          this.pageFor(target.domid).setPostedRanges(ranges.filter((r) => r.posted));
          this.hv.console.write('xen', `d${target.domid}: ioreq server d${caller.domid} for ${ranges.map((r) => `0x${r.base.toString(16)}+0x${r.size.toString(16)}${r.posted ? ' (posted)' : ''}`).join(', ')}`);
          return null;
        },
      },
      'hvm.ioreq_server.complete': {
        priv: 'hook',
        handle: (caller, raw, ctx) => {
          const op = 'hvm.ioreq_server.complete';
          const a = argObject(op, raw);
          const domid = argDomId(op, a);
          const s = this.serverFor(op, caller, domid, ctx);
          if (a.mirror !== undefined) this.applyMirror(op, domid, argMirror(op, a.mirror));
          const id = argInt(op, a, 'id', 1, Number.MAX_SAFE_INTEGER);
          const done = s.pending.get(id);
          if (!done) throw new XenError('EINVAL', `${op}: no request ${id} is outstanding for d${domid}`);
          s.pending.delete(id);
          done(argInt(op, a, 'value', 0, Number.MAX_SAFE_INTEGER));
          return null;
        },
      },
      'hvm.ioreq_server.set_mirror': {
        priv: 'hook',
        handle: (caller, raw, ctx) => {
          const op = 'hvm.ioreq_server.set_mirror';
          const a = argObject(op, raw);
          const domid = argDomId(op, a);
          this.serverFor(op, caller, domid, ctx);
          this.applyMirror(op, domid, argMirror(op, a.regs));
          return null;
        },
      },
      'hvm.ioreq_server.info': {
        priv: 'hook',
        handle: (caller, raw): IoreqServerInfo => {
          const op = 'hvm.ioreq_server.info';
          const domid = targetDomain(op, caller, this.hv.domains, argDomId(op, argObject(op, raw))).domid;
          const s = this.servers.get(domid);
          if (!s) throw new XenError('ENOENT', `${op}: d${domid} has no ioreq server`);
          const page = this.pages.get(domid)?.page;
          return {
            domid, server: s.server, ranges: s.ranges, mirrored: page?.mirrored ?? 0,
            syncRequests: s.syncRequests, bufferedWrites: s.bufferedWrites, bufferedBatches: s.bufferedBatches,
            ...(page ? page.stats() : { localReads: 0, postedWrites: 0 }),
          };
        },
      },
      'hvm.set_irq_level': {
        priv: 'hook',
        handle: (caller, raw, ctx) => {
          const op = 'hvm.set_irq_level';
          const a = argObject(op, raw);
          const domid = argDomId(op, a);
          this.serverFor(op, caller, domid, ctx);
          const sched = this.hv.guests.scheduler;
          if (!sched?.hasDomain(domid)) throw new XenError('ESRCH', `${op}: d${domid} has no running vCPUs`);
          if (typeof a.level !== 'boolean') throw new XenError('EINVAL', `${op}: level must be true or false`);
          sched.setIrqLine(domid, argInt(op, a, 'source', 1, 1023), a.level);
          return null;
        },
      },
      'hvm.console_output': {
        priv: 'hook',
        handle: (caller, raw, ctx) => {
          const op = 'hvm.console_output';
          const a = argObject(op, raw);
          const domid = argDomId(op, a);
          this.serverFor(op, caller, domid, ctx);
          this.hv.guests.consoleOutput(domid, argBytes(op, a, 'data', CONSOLE_MAX));
          return null;
        },
      },
      'hvm.remote_shutdown': {
        priv: 'hook',
        handle: (caller, raw, ctx) => {
          const op = 'hvm.remote_shutdown';
          const a = argObject(op, raw);
          const domid = argDomId(op, a);
          this.serverFor(op, caller, domid, ctx);
          this.hv.shutdownDomain(this.hv.domains.require(domid), argEnum(op, a, 'reason', SHUTDOWN_REASONS));
          return null;
        },
      },
    };
  }
}

function argRanges(op: string, raw: unknown): IoreqRange[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > IOREQ_MAX_RANGES) throw new XenError('EINVAL', `${op}: ranges must be a list of 1..${IOREQ_MAX_RANGES} {base, size, posted?}`);
  const out = raw.map((r, i) => {
    const f = argObject(`${op} ranges[${i}]`, r);
    const base = argInt(`${op} ranges[${i}]`, f, 'base', 0, ADDR_MAX);
    const size = argInt(`${op} ranges[${i}]`, f, 'size', 1, ADDR_MAX + 1 - base);
    return { base, size, posted: f.posted === true };
  });
  const sorted = [...out].sort((x, y) => x.base - y.base);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.base < sorted[i - 1]!.base + sorted[i - 1]!.size) throw new XenError('EINVAL', `${op}: ranges overlap at 0x${sorted[i]!.base.toString(16)}`);
  }
  return out;
}

function argMirror(op: string, raw: unknown): MirrorReg[] {
  if (!Array.isArray(raw) || raw.length > IOREQ_MAX_MIRRORS) throw new XenError('EINVAL', `${op}: mirror registers must be a list of at most ${IOREQ_MAX_MIRRORS} {addr, size, value}`);
  return raw.map((r, i) => {
    const f = argObject(`${op} regs[${i}]`, r);
    const size = argInt(`${op} regs[${i}]`, f, 'size', 1, 4);
    if (size === 3) throw new XenError('EINVAL', `${op} regs[${i}]: size is 1, 2 or 4`);
    return { addr: argInt(`${op} regs[${i}]`, f, 'addr', 0, ADDR_MAX), size, value: argInt(`${op} regs[${i}]`, f, 'value', 0, 0xffff_ffff) };
  });
}

