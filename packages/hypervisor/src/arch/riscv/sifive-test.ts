/**
 * The SiFive test finisher ("sifive,test0", syscon at 0x100000 on virt):
 * a 32-bit write of 0x5555 powers off (pass), (code << 16) | 0x3333 powers
 * off with exit code `code` (fail), 0x7777 resets (QEMU hw/misc/sifive_test.c).
 */
import { MMIO, type MmioAction, type MmioDevice } from './memory.js';

export const FINISHER_PASS = 0x5555;
export const FINISHER_FAIL = 0x3333;
export const FINISHER_RESET = 0x7777;

export type ShutdownRequest = { kind: 'poweroff' | 'reboot'; code: number };

export class SifiveTest implements MmioDevice {
  /** The last request, for whoever handles the 'shutdown' exit. */
  request: ShutdownRequest | undefined;

  read(): number {
    return 0;
  }

  write(offset: number, size: number, value: number): MmioAction {
    if (offset !== 0 || size < 4) return MMIO.OK;
    switch (value & 0xffff) {
      case FINISHER_PASS: this.request = { kind: 'poweroff', code: 0 }; return MMIO.STOP;
      case FINISHER_FAIL: this.request = { kind: 'poweroff', code: value >>> 16 }; return MMIO.STOP;
      case FINISHER_RESET: this.request = { kind: 'reboot', code: 0 }; return MMIO.STOP;
    }
    return MMIO.OK;
  }
}
