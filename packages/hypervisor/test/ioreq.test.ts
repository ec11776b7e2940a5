/**
 * ioreq servers (common/ioreq.ts, ioreq-page.ts): who may serve a guest's
 * devices, how an MMIO exit travels to the device model and back, what the
 * pCPU serves itself (mirror, posted writes), and what a dying server does.
 */
import { describe, expect, it } from 'vitest';
import { MMIO, MMIO_READ_EXIT } from '../src/arch/riscv/memory.js';
import { IoreqWindow } from '../src/common/ioreq-page.js';
import { makeHypervisor } from './hv-harness.js';

const UART = 0x1000_0000;
const RANGES = [{ base: 0x100000, size: 0x1000 }, { base: UART, size: 0x100, posted: true }];

function setup() {
  const h = makeHypervisor();
  const guest = h.call(0, 'domctl.createdomain', { name: 'g', kind: 'hvm', memkb: 1024 }).domid as number;
  const other = h.call(0, 'domctl.createdomain', { name: 'o', kind: 'hvm', memkb: 1024 }).domid as number;
  const dm = h.newDomain('g-dm', 'stubdom', { target: guest });
  return { ...h, guest, other, dm };
}

describe('ioreq servers', () => {
  it('may be registered by dom0 or the guest\'s own stub domain only', () => {
    const { call, errnoOf, newDomain, guest, other, dm } = setup();
    const svc = newDomain('svc');
    expect(errnoOf(() => call(dm, 'hvm.ioreq_server.register', { domid: other, ranges: RANGES }))).toBe('EPERM');
    expect(errnoOf(() => call(svc, 'hvm.ioreq_server.register', { domid: guest, ranges: RANGES }))).toBe('EPERM');
    expect(errnoOf(() => call(dm, 'hvm.ioreq_server.register', { domid: guest, ranges: [{ base: 0, size: 0x10 }, { base: 8, size: 0x10 }] }))).toBe('EINVAL');
    expect(call(dm, 'hvm.ioreq_server.register', { domid: guest, ranges: RANGES })).toBeNull();
    expect(errnoOf(() => call(0, 'hvm.ioreq_server.register', { domid: guest, ranges: RANGES }))).toBe('EEXIST');
    expect(errnoOf(() => call(0, 'hvm.ioreq_server.complete', { domid: guest, id: 1, value: 0 }))).toBe('EPERM');
  });

  it('forwards an exit with the posted writes ahead of it, and resumes the vCPU with the answer', async () => {
    const { hv, call, eventsFor, guest, dm } = setup();
    call(dm, 'hvm.ioreq_server.register', { domid: guest, ranges: RANGES });
    const page = hv.ioreq.pageFor(guest);
    const uart = new IoreqWindow(page.sab, UART);
    expect(uart.write(0, 1, 0x41)).toBe(MMIO.OK); // posted: the vCPU goes on
    expect(uart.write(0, 1, 0x42)).toBe(MMIO.OK);
    const answer = hv.ioreq.mmio(guest, 0, { write: false, addr: UART + 2, size: 1, value: 0n });
    const ev = eventsFor(dm, 'hvm.ioreq').at(-1)!.data;
    expect(ev.buffered).toEqual([UART, 1, 0x41, UART, 1, 0x42]);
    expect(ev.req).toMatchObject({ write: false, addr: UART + 2, size: 1, vcpu: 0 });
    call(dm, 'hvm.ioreq_server.complete', { domid: guest, id: ev.req.id, value: 0xc1, mirror: [{ addr: UART + 5, size: 1, value: 0x60 }] });
    await expect(answer).resolves.toBe(0xc1);
    // The mirrored LSR is now answered by the pCPU itself; unmirrored registers still exit.
    expect(uart.read(5, 1)).toBe(0x60);
    expect(uart.read(0, 1)).toBe(MMIO_READ_EXIT);
    expect(call(0, 'hvm.ioreq_server.info', { domid: guest })).toMatchObject({ server: dm, syncRequests: 1, bufferedWrites: 2, localReads: 1, postedWrites: 2 });
  });

  it('makes writes outside posted ranges synchronous, and reads of unclaimed addresses an open bus', () => {
    const { hv, call, guest, dm } = setup();
    call(dm, 'hvm.ioreq_server.register', { domid: guest, ranges: RANGES });
    const test = new IoreqWindow(hv.ioreq.pageFor(guest).sab, 0x100000);
    expect(test.write(0, 4, 0x5555)).toBe(MMIO.EXIT);
    expect(hv.ioreq.mmio(guest, 0, { write: false, addr: 0x10001000, size: 4, value: 0n })).toBe(0xffffffff);
  });

  it('crashes the guest when its stub domain dies, and takes the stub domain with a destroyed guest', () => {
    const { hv, call, guest, other, dm } = setup();
    call(dm, 'hvm.ioreq_server.register', { domid: guest, ranges: RANGES });
    call(0, 'domctl.destroydomain', { domid: dm });
    expect(hv.domains.get(guest)!.shutdown).toBe('crash');
    const dm2 = call(0, 'domctl.createdomain', { name: 'o-dm', kind: 'stubdom', target: other }).domid;
    call(0, 'domctl.destroydomain', { domid: other });
    expect(hv.domains.get(dm2)).toBeUndefined();
  });
});
