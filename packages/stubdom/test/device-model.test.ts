import { describe, expect, it } from 'vitest';
import type { IoreqHypercallOp } from '@xenbox/abi';
import { DeviceModel, VIRT_BOARD, type DmLink } from '@xenbox/stubdom';

function model() {
  const sent: Array<[IoreqHypercallOp, Record<string, unknown>]> = [];
  const link: DmLink = {
    call: async (op, args) => void sent.push([op, args as Record<string, unknown>]),
    post: (op, args) => void sent.push([op, args as Record<string, unknown>]),
  };
  return { dm: new DeviceModel(7, link), sent };
}

describe('the device model', () => {
  it('registers the virt windows (UART and virtio posted, the test device synchronous) and publishes the mirror', async () => {
    const { dm, sent } = model();
    await dm.start();
    expect(sent[0]).toEqual(['hvm.ioreq_server.register', { domid: 7, ranges: [
      { base: VIRT_BOARD.TEST, size: 0x1000, posted: false },
      { base: VIRT_BOARD.UART0, size: 0x100, posted: true },
      { base: VIRT_BOARD.VIRTIO, size: 0x8000, posted: true },
    ] }]);
    expect(sent[1]![0]).toBe('hvm.ioreq_server.set_mirror');
    expect((sent[1]![1].regs as unknown[]).length).toBe(2 + 1 + 8 * 4);
  });

  it('applies posted writes in order before the request, and sends console bytes before the completion', async () => {
    const { dm, sent } = model();
    await dm.start();
    sent.length = 0;
    const U = VIRT_BOARD.UART0;
    dm.handleIoreq({ domid: 7, buffered: [U, 1, 0x68, U, 1, 0x69, U + 7, 1, 0x5a], req: { id: 1, vcpu: 0, write: false, addr: U + 7, size: 1, value: 0 } });
    expect(sent).toEqual([
      ['hvm.console_output', { domid: 7, data: Uint8Array.from([0x68, 0x69]) }],
      ['hvm.ioreq_server.complete', { domid: 7, id: 1, value: 0x5a }],
    ]);
  });

  it('sends a changed LSR with the completion of the RBR read that emptied the FIFO, and on input', async () => {
    const { dm, sent } = model();
    await dm.start();
    sent.length = 0;
    dm.consoleInput(Uint8Array.from([0x0d]));
    expect(sent).toEqual([['hvm.ioreq_server.set_mirror', { domid: 7, regs: [{ addr: VIRT_BOARD.UART0 + 5, size: 1, value: 0x61 }] }]]);
    sent.length = 0;
    dm.handleIoreq({ domid: 7, buffered: [], req: { id: 2, vcpu: 0, write: false, addr: VIRT_BOARD.UART0, size: 1, value: 0 } });
    expect(sent).toEqual([['hvm.ioreq_server.complete', { domid: 7, id: 2, value: 0x0d, mirror: [{ addr: VIRT_BOARD.UART0 + 5, size: 1, value: 0x60 }] }]]);
  });

  it('turns a poweroff write to the test device into remote_shutdown before completing it', async () => {
    const { dm, sent } = model();
    await dm.start();
    sent.length = 0;
    dm.handleIoreq({ domid: 7, buffered: [], req: { id: 3, vcpu: 0, write: true, addr: VIRT_BOARD.TEST, size: 4, value: 0x5555 } });
    expect(sent).toEqual([
      ['hvm.remote_shutdown', { domid: 7, reason: 'poweroff' }],
      ['hvm.ioreq_server.complete', { domid: 7, id: 3, value: 0 }],
    ]);
  });
});
