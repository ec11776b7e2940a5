/**
 * The SiFive test finisher at 0x100000 ("sifive,test1", "sifive,test0",
 * "syscon"; QEMU hw/misc/sifive_test.c): a 32-bit write of FINISHER_PASS
 * (0x5555) powers the machine off, FINISHER_FAIL (code << 16 | 0x3333)
 * powers it off with an error code, FINISHER_RESET (0x7777) resets it.  The
 * device tree's syscon-poweroff / syscon-reboot nodes point U-Boot's
 * sysreset (drivers/sysreset/sysreset_syscon.c, via regmap_write) at it.
 * Reads return 0 (sifive_test_read), so offset 0 is mirrored.
 *
 * Writes are synchronous: the shutdown is recorded before the vCPU could run
 * another instruction.
 */
import type { DeviceHost, MirroredRegister, MmioDeviceModel } from '../device.js';

export const FINISHER = { FAIL: 0x3333, PASS: 0x5555, RESET: 0x7777 } as const;

export class SifiveTest implements MmioDeviceModel {
  readonly name = 'sifive-test';
  readonly size = 0x1000;
  readonly postedWrites = false;
  /** The fail code of the last FINISHER_FAIL (QEMU exits with it). */
  failCode: number | null = null;

  constructor(readonly base: number, private readonly host: DeviceHost) {}

  read(): number {
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    if (offset !== 0 || size < 4) return;
    switch (value & 0xffff) {
      case FINISHER.PASS:
        return this.host.shutdown('poweroff');
      case FINISHER.FAIL:
        // A failing exit code: the machine stops; for a domain that is a crash (its code is in the log).
        this.failCode = (value >>> 16) & 0xffff;
        return this.host.shutdown('crash');
      case FINISHER.RESET:
        return this.host.shutdown('reboot');
    }
  }

  mirror(): MirroredRegister[] {
    return [{ offset: 0, size: 4, value: 0 }];
  }
}
