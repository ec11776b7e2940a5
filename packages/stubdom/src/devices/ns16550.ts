/**
 * The virt board's console UART, an NS16550A at 0x10000000 (reg-shift 0,
 * byte registers), after QEMU's hw/char/serial.c and the PC16550D data
 * sheet: RBR/THR/DLL, IER/DLM, IIR/FCR, LCR, MCR, LSR, MSR, SCR, the divisor
 * latch, 16-byte-mode FIFO flags, and its interrupt (received data available
 * and THR empty, by IER; IIR priority as serial_update_irq()).
 *
 * Transmission is instant (the byte goes to the guest's console at once), so
 * THR is always empty: LSR.THRE and TEMT stay set, as QEMU's with a chardev
 * that never blocks.  Received bytes come from xenconsoled (`xl console`).
 *
 * Mirrored for the hypervisor: LSR (firmware polls it for every byte it
 * sends and for keyboard input; its only changes come from received input,
 * which the device model pushes, and RBR reads, which are synchronous) and
 * MSR (constant: DCD, DSR and CTS asserted; loopback is not modelled).
 */
import type { DeviceHost, MirroredRegister, MmioDeviceModel } from '../device.js';

export const UART_REG = { RBR_THR_DLL: 0, IER_DLM: 1, IIR_FCR: 2, LCR: 3, MCR: 4, LSR: 5, MSR: 6, SCR: 7 } as const;
export const LSR = { DR: 0x01, THRE: 0x20, TEMT: 0x40 } as const;
export const IER = { RDI: 0x01, THRI: 0x02, RLSI: 0x04, MSI: 0x08 } as const;
export const IIR = { NO_INT: 0x01, THRI: 0x02, RDI: 0x04, FIFO: 0xc0 } as const;
const LCR_DLAB = 0x80;
const FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02;
/** MSR with DCD, DSR and CTS asserted (a connected terminal). */
const MSR_CONNECTED = 0xb0;
/** Input beyond this is dropped, as an overrun would (the FIFO is 16 bytes; xenconsoled buffers the rest). */
const RX_LIMIT = 4096;

export interface Ns16550Options {
  base: number;
  irq: number;
  host: DeviceHost;
}

export class Ns16550 implements MmioDeviceModel {
  readonly name = 'ns16550a';
  readonly base: number;
  readonly size = 0x100;
  readonly postedWrites = true;
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private dll = 0;
  private dlm = 0;
  private fcr = 0;
  /** thr_ipending of serial.c: set when THR empties (always at once here), cleared by an IIR read or a THR write. */
  private thrIpending = false;
  private readonly rx: number[] = [];
  private irqLevel = false;
  private readonly host: DeviceHost;
  private readonly irq: number;
  /** Bytes transmitted, not yet handed to the host (flushed by the device model after each batch). */
  private readonly tx: number[] = [];

  constructor(opts: Ns16550Options) {
    this.base = opts.base;
    this.irq = opts.irq;
    this.host = opts.host;
  }

  /** Keyboard bytes for the guest. */
  receive(bytes: Uint8Array | number[]): void {
    for (const b of bytes) if (this.rx.length < RX_LIMIT) this.rx.push(b & 0xff);
    this.updateIrq();
  }

  get divisor(): number {
    return (this.dlm << 8) | this.dll;
  }

  read(offset: number, size: number): number {
    if (size !== 1) return 0;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case UART_REG.RBR_THR_DLL: {
        if (dlab) return this.dll;
        const b = this.rx.shift() ?? 0;
        this.updateIrq();
        return b;
      }
      case UART_REG.IER_DLM:
        return dlab ? this.dlm : this.ier;
      case UART_REG.IIR_FCR: {
        const iir = this.iir();
        // serial_ioport_read UART_IIR: reading the THRE interrupt acknowledges it.
        if ((iir & 0x0f) === IIR.THRI) {
          this.thrIpending = false;
          this.updateIrq();
        }
        return iir;
      }
      case UART_REG.LCR:
        return this.lcr;
      case UART_REG.MCR:
        return this.mcr;
      case UART_REG.LSR:
        return this.lsr();
      case UART_REG.MSR:
        return MSR_CONNECTED;
      case UART_REG.SCR:
        return this.scr;
    }
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    if (size !== 1) return;
    const v = value & 0xff;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case UART_REG.RBR_THR_DLL:
        if (dlab) {
          this.dll = v;
          return;
        }
        this.tx.push(v);
        // The byte leaves at once, so THR is empty again: a new THRE interrupt (serial_xmit).
        this.thrIpending = true;
        this.updateIrq();
        return;
      case UART_REG.IER_DLM:
        if (dlab) {
          this.dlm = v;
          return;
        }
        {
          const was = this.ier;
          this.ier = v & 0x0f;
          // Enabling THRI while THR is empty raises it (serial_ioport_write UART_IER).
          if (this.ier & IER.THRI && !(was & IER.THRI)) this.thrIpending = true;
          this.updateIrq();
        }
        return;
      case UART_REG.IIR_FCR:
        this.fcr = v & 0xc9;
        if (v & FCR_CLEAR_RX) this.rx.length = 0;
        this.updateIrq();
        return;
      case UART_REG.LCR:
        this.lcr = v;
        return;
      case UART_REG.MCR:
        this.mcr = v & 0x1f;
        return;
      case UART_REG.SCR:
        this.scr = v;
        return;
    }
  }

  mirror(): MirroredRegister[] {
    return [
      { offset: UART_REG.LSR, size: 1, value: this.lsr() },
      { offset: UART_REG.MSR, size: 1, value: MSR_CONNECTED },
    ];
  }

  /** Hand transmitted bytes to the host (one console message per batch of guest writes). */
  flush(): void {
    if (this.tx.length) this.host.consoleOutput(Uint8Array.from(this.tx.splice(0)));
  }

  private lsr(): number {
    return LSR.THRE | LSR.TEMT | (this.rx.length ? LSR.DR : 0);
  }

  private iir(): number {
    const fifo = this.fcr & FCR_ENABLE ? IIR.FIFO : 0;
    if (this.ier & IER.RDI && this.rx.length) return fifo | IIR.RDI;
    if (this.ier & IER.THRI && this.thrIpending) return fifo | IIR.THRI;
    return fifo | IIR.NO_INT;
  }

  private updateIrq(): void {
    const level = (this.iir() & IIR.NO_INT) === 0;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.host.setIrq(this.irq, level);
  }
}
