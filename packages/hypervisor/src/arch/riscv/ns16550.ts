/**
 * A minimal NS16550A UART (the virt board's console at 0x10000000, reg-shift
 * 0): transmit goes to a byte sink at once, so THR is always empty; receive
 * comes from a queue.  Enough for U-Boot, OpenSBI and Linux's 8250 driver:
 * divisor latch, IER/IIR with RX-data and THR-empty interrupts, LSR polling.
 */
import type { MmioDevice } from './memory.js';

const LSR_DR = 0x01, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const IER_RDI = 0x01, IER_THRI = 0x02;
const LCR_DLAB = 0x80;

export class Ns16550 implements MmioDevice {
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private dll = 0;
  private dlm = 0;
  /** THR-empty interrupt pending (cleared by reading IIR or writing THR, set again after a write). */
  private thrEmptyPending = false;
  private readonly rx: number[] = [];

  /**
   * @param output receives each transmitted byte
   * @param irq sets the UART's interrupt line level (PLIC source 10 on virt)
   */
  constructor(private readonly output: (byte: number) => void, private readonly irq: (level: boolean) => void = () => {}) {}

  /** Queue bytes typed by the user. */
  receive(bytes: Uint8Array | number[]): void {
    for (const b of bytes) this.rx.push(b & 0xff);
    this.updateIrq();
  }

  read(offset: number, size: number): number {
    if (size !== 1) return 0;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case 0:
        if (dlab) return this.dll;
        { const b = this.rx.shift() ?? 0; this.updateIrq(); return b; }
      case 1: return dlab ? this.dlm : this.ier;
      case 2: { // IIR: FIFOs enabled (0xc0); 0x4 RX data, 0x2 THR empty, 0x1 none
        let iir = 0xc1;
        if (this.ier & IER_RDI && this.rx.length) iir = 0xc4;
        else if (this.ier & IER_THRI && this.thrEmptyPending) { iir = 0xc2; this.thrEmptyPending = false; this.updateIrq(); }
        return iir;
      }
      case 3: return this.lcr;
      case 4: return this.mcr;
      case 5: return LSR_THRE | LSR_TEMT | (this.rx.length ? LSR_DR : 0);
      case 6: return 0xb0; // DCD, DSR, CTS
      case 7: return this.scr;
    }
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    if (size !== 1) return;
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case 0:
        if (dlab) { this.dll = value; return; }
        this.output(value & 0xff);
        this.thrEmptyPending = true;
        this.updateIrq();
        return;
      case 1:
        if (dlab) { this.dlm = value; return; }
        this.ier = value & 0x0f;
        this.thrEmptyPending = (this.ier & IER_THRI) !== 0;
        this.updateIrq();
        return;
      case 3: this.lcr = value; return;
      case 4: this.mcr = value; return;
      case 7: this.scr = value; return;
    }
  }

  private updateIrq(): void {
    this.irq(((this.ier & IER_RDI) !== 0 && this.rx.length > 0) || ((this.ier & IER_THRI) !== 0 && this.thrEmptyPending));
  }
}
