/**
 * The SBI implementation the hypervisor offers S-mode (PVH) guests, where it
 * plays the role of M-mode firmware (SBI spec v2.0): BASE, TIME, IPI,
 * RFENCE, HSM, SRST, DBCN, the legacy extensions, and the Xen hypercall
 * extension (XEN_SBI_EID), which leaves the run loop so the hypervisor's
 * main thread can serve it.  Register ABI: packages/abi/src/riscv-sbi.ts.
 */
import {
  SBI_BASE_FID, SBI_DBCN_FID, SBI_EID, SBI_ERR, SBI_HSM_FID, SBI_HSM_STATE, SBI_IMPL_ID_XEN, SBI_IMPL_VERSION,
  SBI_RFENCE_FID, SBI_SPEC_VERSION, SBI_SRST_TYPE, XEN_SBI_EID,
} from '@xenbox/abi';
import { SbiOutcome, type Hart, type SbiHandler } from './hart.js';
import { CSR_SLOT, requestFlush, setInterruptPending, W, type VcpuState } from './vcpu-state.js';
import { IRQ, PRIV } from './trap.js';

const A0 = 10, A1 = 11, A2 = 12, A6 = 16, A7 = 17;

export interface SbiPlatform {
  /** Every vCPU of the guest, indexed by hartid (for IPI, RFENCE, HSM). */
  harts: VcpuState[];
  /** Console output (legacy putchar, DBCN). */
  consoleWrite(bytes: Uint8Array): void;
  /** One byte of console input, or -1 when none is waiting. */
  consoleRead?(): number;
}

const SUPPORTED = new Set<number>([
  SBI_EID.BASE, SBI_EID.TIME, SBI_EID.IPI, SBI_EID.RFENCE, SBI_EID.HSM, SBI_EID.SRST, SBI_EID.DBCN, XEN_SBI_EID,
  0, 1, 2, 3, 4, 5, 6, 7, 8,
]);

export class Sbi implements SbiHandler {
  constructor(private readonly platform: SbiPlatform) {}

  ecall(hart: Hart): SbiOutcome {
    const s = hart.state;
    const eid = Number(BigInt.asUintN(32, s.reg(A7)));
    const fid = Number(BigInt.asUintN(32, s.reg(A6)));
    if (eid <= 8) return this.legacy(hart, eid);
    const ret = (error: number, value: bigint | number = 0): SbiOutcome => {
      s.setReg(A0, error);
      s.setReg(A1, value);
      return SbiOutcome.CONTINUE;
    };
    switch (eid) {
      case SBI_EID.BASE:
        switch (fid) {
          case SBI_BASE_FID.GET_SPEC_VERSION: return ret(0, SBI_SPEC_VERSION);
          case SBI_BASE_FID.GET_IMPL_ID: return ret(0, SBI_IMPL_ID_XEN);
          case SBI_BASE_FID.GET_IMPL_VERSION: return ret(0, SBI_IMPL_VERSION);
          case SBI_BASE_FID.PROBE_EXTENSION: return ret(0, SUPPORTED.has(Number(BigInt.asUintN(32, s.reg(A0)))) ? 1 : 0);
          case SBI_BASE_FID.GET_MVENDORID: case SBI_BASE_FID.GET_MARCHID: case SBI_BASE_FID.GET_MIMPID: return ret(0, 0);
        }
        break;
      case SBI_EID.TIME:
        if (fid === 0) { setTimer(hart, s.reg(A0)); return ret(0); }
        break;
      case SBI_EID.IPI:
        if (fid === 0) return ret(this.forHarts(s.reg(A0), s.reg(A1), (t) => setInterruptPending(t, IRQ.SSI, true)));
        break;
      case SBI_EID.RFENCE: {
        if (fid > SBI_RFENCE_FID.REMOTE_SFENCE_VMA_ASID) return ret(SBI_ERR.NOT_SUPPORTED);
        const what = fid === SBI_RFENCE_FID.REMOTE_FENCE_I ? 2 : 1;
        return ret(this.forHarts(s.reg(A0), s.reg(A1), (t) => this.flush(hart, t, what)));
      }
      case SBI_EID.HSM: return this.hsm(hart, fid, ret);
      case SBI_EID.SRST:
        if (fid === 0) {
          const type = Number(BigInt.asUintN(32, s.reg(A0)));
          if (type > SBI_SRST_TYPE.WARM_REBOOT) return ret(SBI_ERR.INVALID_PARAM);
          const reason = Number(BigInt.asUintN(32, s.reg(A1)));
          hart.requestShutdown(type === SBI_SRST_TYPE.SHUTDOWN ? 'poweroff' : 'reboot', reason === 0 ? 0 : 1);
          return SbiOutcome.SHUTDOWN;
        }
        break;
      case SBI_EID.DBCN: return this.dbcn(hart, fid, ret);
      case XEN_SBI_EID:
        return SbiOutcome.HYPERCALL; // a6 = op, a0..a5 = args; the hypervisor answers via completeHypercall
    }
    return ret(SBI_ERR.NOT_SUPPORTED);
  }

  /** Legacy extensions (SBI v0.1): result in a0 only. */
  private legacy(hart: Hart, eid: number): SbiOutcome {
    const s = hart.state;
    switch (eid) {
      case SBI_EID.LEGACY_SET_TIMER: setTimer(hart, s.reg(A0)); s.setReg(A0, 0); break;
      case SBI_EID.LEGACY_CONSOLE_PUTCHAR: this.platform.consoleWrite(Uint8Array.of(Number(s.reg(A0) & 0xffn))); s.setReg(A0, 0); break;
      case SBI_EID.LEGACY_CONSOLE_GETCHAR: s.setReg(A0, this.platform.consoleRead?.() ?? -1); break;
      case SBI_EID.LEGACY_CLEAR_IPI: setInterruptPending(s, IRQ.SSI, false); s.setReg(A0, 0); break;
      case SBI_EID.LEGACY_SEND_IPI: case SBI_EID.LEGACY_REMOTE_FENCE_I:
      case SBI_EID.LEGACY_REMOTE_SFENCE_VMA: case SBI_EID.LEGACY_REMOTE_SFENCE_VMA_ASID: {
        // a0 is a pointer to a hart mask (0 = all harts).
        const ptr = s.reg(A0);
        const mask = ptr === 0n ? -1n : hart.readVirtual64(ptr);
        if (mask === undefined) { s.setReg(A0, SBI_ERR.INVALID_ADDRESS); break; }
        const act = eid === SBI_EID.LEGACY_SEND_IPI
          ? (t: VcpuState) => setInterruptPending(t, IRQ.SSI, true)
          : (t: VcpuState) => this.flush(hart, t, eid === SBI_EID.LEGACY_REMOTE_FENCE_I ? 2 : 1);
        s.setReg(A0, this.forHarts(BigInt.asUintN(64, mask), 0n, act));
        break;
      }
      case SBI_EID.LEGACY_SHUTDOWN:
        hart.requestShutdown('poweroff', 0);
        return SbiOutcome.SHUTDOWN;
    }
    return SbiOutcome.CONTINUE;
  }

  /** Apply `act` to the harts in (mask, base); base = -1 means all harts (SBI spec §3.1). */
  private forHarts(mask: bigint, base: bigint, act: (t: VcpuState) => void): number {
    const harts = this.platform.harts;
    if (BigInt.asIntN(64, base) === -1n) {
      harts.forEach((t) => t && act(t));
      return SBI_ERR.SUCCESS;
    }
    for (let i = 0; i < 64; i++) {
      if (((mask >> BigInt(i)) & 1n) === 0n) continue;
      const t = harts[Number(base) + i];
      if (!t) return SBI_ERR.INVALID_PARAM;
    }
    for (let i = 0; i < 64; i++) if ((mask >> BigInt(i)) & 1n) act(harts[Number(base) + i]!);
    return SBI_ERR.SUCCESS;
  }

  private flush(self: Hart, target: VcpuState, what: number): void {
    if (target === self.state) {
      if (what & 1) self.flushTlb();
      if (what & 2) self.flushCode();
    } else requestFlush(target, what);
  }

  private hsm(hart: Hart, fid: number, ret: (e: number, v?: bigint | number) => SbiOutcome): SbiOutcome {
    const s = hart.state;
    switch (fid) {
      case SBI_HSM_FID.HART_START: {
        const t = this.platform.harts[Number(s.reg(A0))];
        if (!t) return ret(SBI_ERR.INVALID_PARAM);
        if (Atomics.load(t.i32, W.HSM) !== SBI_HSM_STATE.STOPPED) return ret(SBI_ERR.ALREADY_AVAILABLE);
        // The hart starts in S-mode at start_addr with a0 = hartid, a1 = opaque, satp = 0, SIE = 0 (SBI spec §9.1).
        t.pc = s.reg(A1);
        t.setReg(A0, BigInt(t.hartid));
        t.setReg(A1, s.reg(A2));
        t.priv = PRIV.S;
        t.setCsr(CSR_SLOT.satp, 0, 0);
        t.setCsr(CSR_SLOT.mstatus, t.csrLo(CSR_SLOT.mstatus) & ~2, t.csrHi(CSR_SLOT.mstatus));
        Atomics.store(t.i32, W.HSM, SBI_HSM_STATE.START_PENDING);
        Atomics.store(t.i32, W.KICK, 1);
        Atomics.notify(t.i32, W.KICK);
        return ret(0);
      }
      case SBI_HSM_FID.HART_STOP:
        Atomics.store(s.i32, W.HSM, SBI_HSM_STATE.STOPPED);
        return SbiOutcome.STOPPED;
      case SBI_HSM_FID.HART_GET_STATUS: {
        const t = this.platform.harts[Number(s.reg(A0))];
        if (!t) return ret(SBI_ERR.INVALID_PARAM);
        const st = Atomics.load(t.i32, W.HSM);
        return ret(0, st === SBI_HSM_STATE.START_PENDING ? SBI_HSM_STATE.STARTED : st);
      }
      case SBI_HSM_FID.HART_SUSPEND:
        // Only the default retentive suspend (type 0): it behaves like WFI.
        if (BigInt.asUintN(32, s.reg(A0)) !== 0n) return ret(SBI_ERR.NOT_SUPPORTED);
        ret(0);
        return SbiOutcome.WFI;
    }
    return ret(SBI_ERR.NOT_SUPPORTED);
  }

  private dbcn(hart: Hart, fid: number, ret: (e: number, v?: bigint | number) => SbiOutcome): SbiOutcome {
    const s = hart.state;
    switch (fid) {
      case SBI_DBCN_FID.CONSOLE_WRITE: {
        const n = Number(s.reg(A0));
        const addr = Number(s.reg(A1) | (s.reg(A2) << 64n));
        const off = hart.ram.offsetOf(addr, n);
        if (off < 0) return ret(SBI_ERR.INVALID_PARAM);
        this.platform.consoleWrite(hart.ram.u8.slice(off, off + n));
        return ret(0, n);
      }
      case SBI_DBCN_FID.CONSOLE_READ: {
        const n = Number(s.reg(A0));
        const off = hart.ram.offsetOf(Number(s.reg(A1)), n);
        if (off < 0) return ret(SBI_ERR.INVALID_PARAM);
        let got = 0;
        for (; got < n; got++) {
          const b = this.platform.consoleRead?.() ?? -1;
          if (b < 0) break;
          hart.ram.u8[off + got] = b;
        }
        return ret(0, got);
      }
      case SBI_DBCN_FID.CONSOLE_WRITE_BYTE:
        this.platform.consoleWrite(Uint8Array.of(Number(s.reg(A0) & 0xffn)));
        return ret(0);
    }
    return ret(SBI_ERR.NOT_SUPPORTED);
  }
}

/** SBI set_timer: the next STIP deadline in mtime units; STIP clears until then (SBI spec §6.1). */
function setTimer(hart: Hart, when: bigint): void {
  hart.state.setCsrBig(CSR_SLOT.sbiTimer, when);
  hart.updateTimerInterrupts();
}
