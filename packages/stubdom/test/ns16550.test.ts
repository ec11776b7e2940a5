import { describe, expect, it } from 'vitest';
import { IER, LSR, Ns16550, UART_REG, type DeviceHost } from '@xenbox/stubdom';

function uart() {
  const out: number[] = [];
  const irqs: Array<[number, boolean]> = [];
  const host: DeviceHost = { setIrq: (s, l) => irqs.push([s, l]), consoleOutput: (b) => out.push(...b), shutdown: () => undefined };
  return { u: new Ns16550({ base: 0x1000_0000, irq: 10, host }), out, irqs };
}

describe('the ns16550a UART', () => {
  it("takes U-Boot's init sequence and programs the divisor latch behind DLAB", () => {
    const { u } = uart();
    // riscv-platform.md §3.1: IER=0, MCR=3, FCR=7, LCR=3, LCR=0x83, DLL=2, DLM=0, LCR=3
    for (const [r, v] of [[1, 0], [4, 3], [2, 7], [3, 3], [3, 0x83], [0, 2], [1, 0], [3, 3]] as const) u.write(r, 1, v);
    expect(u.divisor).toBe(2);
    expect(u.read(UART_REG.LCR, 1)).toBe(3);
    expect(u.read(UART_REG.MCR, 1)).toBe(3);
    expect(u.read(UART_REG.IIR_FCR, 1)).toBe(0xc1); // FIFOs on, no interrupt
  });

  it('sends THR bytes to the console at once, so LSR always shows THR empty', () => {
    const { u, out } = uart();
    for (const c of Buffer.from('=> ')) u.write(UART_REG.RBR_THR_DLL, 1, c);
    u.flush();
    expect(Buffer.from(out).toString()).toBe('=> ');
    expect(u.read(UART_REG.LSR, 1) & (LSR.THRE | LSR.TEMT)).toBe(LSR.THRE | LSR.TEMT);
  });

  it('receives keyboard bytes: LSR.DR, RBR in order, and the mirror follows', () => {
    const { u } = uart();
    expect(u.mirror().find((r) => r.offset === UART_REG.LSR)!.value & LSR.DR).toBe(0);
    u.receive(Buffer.from('v\r'));
    expect(u.read(UART_REG.LSR, 1) & LSR.DR).toBe(LSR.DR);
    expect(u.mirror().find((r) => r.offset === UART_REG.LSR)!.value & LSR.DR).toBe(LSR.DR);
    expect(u.read(UART_REG.RBR_THR_DLL, 1)).toBe(0x76);
    expect(u.read(UART_REG.RBR_THR_DLL, 1)).toBe(0x0d);
    expect(u.read(UART_REG.LSR, 1) & LSR.DR).toBe(0);
  });

  it('raises its PLIC line for received data and for THR empty, as IER enables, and IIR reports by priority', () => {
    const { u, irqs } = uart();
    u.write(UART_REG.IER_DLM, 1, IER.RDI);
    u.receive([0x41]);
    expect(irqs.at(-1)).toEqual([10, true]);
    expect(u.read(UART_REG.IIR_FCR, 1) & 0x0f).toBe(0x04);
    u.read(UART_REG.RBR_THR_DLL, 1);
    expect(irqs.at(-1)).toEqual([10, false]);
    u.write(UART_REG.IER_DLM, 1, IER.THRI); // THR is empty: enabling THRI raises it
    expect(irqs.at(-1)).toEqual([10, true]);
    expect(u.read(UART_REG.IIR_FCR, 1) & 0x0f).toBe(0x02); // reading IIR acknowledges THRE
    expect(irqs.at(-1)).toEqual([10, false]);
  });

  it('mirrors only side-effect-free registers (LSR, MSR)', () => {
    expect(uart().u.mirror().map((r) => r.offset).sort()).toEqual([UART_REG.LSR, UART_REG.MSR]);
  });
});
