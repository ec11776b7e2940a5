import { describe, expect, it } from 'vitest';
import type { ShutdownReason } from '@xenbox/abi';
import { FINISHER, SifiveTest } from '@xenbox/stubdom';

function dev() {
  const reasons: ShutdownReason[] = [];
  return { d: new SifiveTest(0x100000, { setIrq: () => undefined, consoleOutput: () => undefined, shutdown: (r) => reasons.push(r) }), reasons };
}

describe('the sifive test finisher', () => {
  it('powers off on 0x5555 and resets on 0x7777 (syscon-poweroff / syscon-reboot)', () => {
    const { d, reasons } = dev();
    d.write(0, 4, FINISHER.PASS);
    d.write(0, 4, FINISHER.RESET);
    expect(reasons).toEqual(['poweroff', 'reboot']);
  });

  it('treats (code << 16) | 0x3333 as a failing exit, keeping the code', () => {
    const { d, reasons } = dev();
    d.write(0, 4, (7 << 16) | FINISHER.FAIL);
    expect(reasons).toEqual(['crash']);
    expect(d.failCode).toBe(7);
  });

  it('ignores other values, other offsets and narrow writes; reads 0, which is mirrored', () => {
    const { d, reasons } = dev();
    d.write(0, 4, 0x1234);
    d.write(4, 4, FINISHER.PASS);
    d.write(0, 2, FINISHER.PASS);
    expect(reasons).toEqual([]);
    expect(d.read()).toBe(0);
    expect(d.mirror()).toEqual([{ offset: 0, size: 4, value: 0 }]);
  });
});
