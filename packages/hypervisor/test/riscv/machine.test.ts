import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SBI_EID, SBI_ERR, XEN_SBI_EID, XenError } from '@xenbox/abi';
import * as A from './asm.js';
import { a0, a1, a2, a6, a7, li, t0 } from './asm.js';
import { DATA, machine, MMIO_BASE } from './harness.js';
import { parseElf } from '../../src/arch/riscv/elf.js';
import { virtDeviceTree } from '../../src/arch/riscv/virt-machine.js';
import { runElf } from '../../src/arch/riscv/cli.js';
import { Sbi } from '../../src/arch/riscv/sbi.js';
import { VcpuState, W } from '../../src/arch/riscv/vcpu-state.js';
import { MMIO } from '../../src/arch/riscv/memory.js';

const images = join(dirname(fileURLToPath(import.meta.url)), '../../../guests/images');
const hasTool = (t: string): boolean => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0;

describe('ELF loader', () => {
  it('rejects files that are not RV64 executables with ENOEXEC naming the problem', () => {
    const bad = (bytes: Uint8Array) => {
      try {
        parseElf(bytes);
      } catch (e) {
        return e as XenError;
      }
      throw new Error('accepted');
    };
    expect(bad(new Uint8Array(10)).errno).toBe('ENOEXEC');
    expect(bad(new Uint8Array(64)).message).toMatch(/bad magic/);
    const x86 = Uint8Array.from(readFileSync(join(images, 'htif.elf')));
    x86[18] = 62; // EM_X86_64
    expect(bad(x86).message).toMatch(/not RISC-V/);
  });

  it('reads the entry point, loadable segments and symbols', () => {
    const img = parseElf(readFileSync(join(images, 'htif.elf')));
    expect(img.entry).toBe(0x8000_0000n);
    expect(img.symbols.get('tohost')).toBeDefined();
    expect(img.segments.length).toBeGreaterThan(0);
  });
});

describe('device tree', () => {
  it('describes memory, the CPU with an honest ISA string, timebase, CLINT, PLIC, UART, virtio-mmio, test device', () => {
    const dtb = virtDeviceTree({ memBytes: 128 << 20, harts: 2, bootargs: 'console=ttyS0' });
    const text = new TextDecoder('latin1').decode(dtb);
    expect(new DataView(dtb.buffer).getUint32(0)).toBe(0xd00dfeed);
    expect(new DataView(dtb.buffer).getUint32(20)).toBe(17);
    for (const s of ['rv64imac_zicsr_zifencei', 'riscv,sv39', 'sifive,clint0', 'sifive,plic-1.0.0', 'ns16550a', 'virtio,mmio', 'sifive,test0', 'console=ttyS0', '/soc/serial@10000000']) {
      expect(text).toContain(s);
    }
    expect(text).not.toMatch(/rv64imafd/);
  });

  it.skipIf(!hasTool('dtc'))('is accepted by dtc -I dtb -O dts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xb-fdt-'));
    writeFileSync(join(dir, 'virt.dtb'), virtDeviceTree({ memBytes: 256 << 20, harts: 2, bootargs: 'x' }));
    const dts = execFileSync('dtc', ['-I', 'dtb', '-O', 'dts', join(dir, 'virt.dtb')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    rmSync(dir, { recursive: true, force: true });
    expect(dts).toContain('memory@80000000');
    expect(dts).toContain('reg = <0x00 0x80000000 0x00 0x10000000>');
    expect(dts).toContain('timebase-frequency = <0x989680>');
    expect(dts).toContain('virtio_mmio@10008000');
    expect(dts).toContain('cpu@1');
  });
});

describe('xenbox-cpu runner', () => {
  it('runs the C benchmark guest: UART output, poweroff through the test device, exit code 0', async () => {
    let out = '';
    const r = await runElf(readFileSync(join(images, 'bench.elf')), { memMB: 64, htif: false, stats: false, write: (b) => (out += new TextDecoder().decode(b)) });
    expect(r.exitCode).toBe(0);
    expect(out).toContain('crc32 0x72d79b94');
    expect(out).toContain('matmul 0xcb53302e');
    expect(out).toContain('list 0xff800000');
    expect(out).toContain('done');
    expect(r.instructions).toBeGreaterThan(300_000_000);
  }, 20_000);

  it('--htif prints through tohost/fromhost and exits with the guest code (tohost = code<<1 | 1)', async () => {
    let out = '';
    const r = await runElf(readFileSync(join(images, 'htif.elf')), { memMB: 16, htif: true, stats: false, write: (b) => (out += new TextDecoder().decode(b)) });
    expect(out).toBe('hi\n');
    expect(r.exitCode).toBe(5);
  });
});

describe('MMIO exits to a device model', () => {
  it('a device that cannot answer makes run() exit with the access; the instruction restarts with the answer', () => {
    const m = machine([li(t0, MMIO_BASE + 0x800), A.lw(a0, t0, 0), li(a1, 0x55), A.sw(a1, t0, 4), li(a2, 1)]);
    m.bus.unmap('test-mmio');
    const writes: number[] = [];
    m.bus.map('ioreq', MMIO_BASE, 0x1000, { read: () => 0x1_0000_0001 /* MMIO_READ_EXIT */, write: (_o, _s, v) => (writes.push(v), MMIO.EXIT) });
    const e1 = m.run();
    expect(e1.reason).toBe('mmio');
    expect(e1.mmio).toEqual({ write: false, addr: MMIO_BASE + 0x800, size: 4, value: 0n });
    m.hart.completeMmio(0xffff_fffen);
    const e2 = m.run();
    expect(m.x(a0)).toBe(BigInt.asUintN(64, -2n)); // lw sign-extends the device's answer
    expect(e2.reason).toBe('mmio');
    expect(e2.mmio).toEqual({ write: true, addr: MMIO_BASE + 0x804, size: 4, value: 0x55n });
    m.hart.completeMmio();
    expect(m.run().reason).toBe('wfi');
    expect(m.x(a2)).toBe(1n);
    expect(writes).toEqual([0x55]); // forwarded once, not re-sent on restart
  });
});

describe('SBI for S-mode (PVH) guests', () => {
  const sbiMachine = (prog: A.Program, console: number[] = [], harts?: VcpuState[]) => {
    const m = machine(prog, { priv: 1, sbi: new Sbi({ harts: [], consoleWrite: (b) => console.push(...b) }) });
    (m.hart.sbi as unknown as { platform: { harts: VcpuState[] } }).platform.harts = harts ?? [m.state];
    return m;
  };
  const call = (eid: number, fid: number, args: (number | bigint)[] = []): A.Program => [
    ...args.map((v, i) => li(a0 + i, v)), li(a7, eid), li(a6, fid), A.ecall(),
  ];

  it('BASE: spec version 2.0, implementation Xen (7), probes known and unknown extensions', () => {
    const m = sbiMachine([...call(SBI_EID.BASE, 0), A.add(0x1c, a1, 0), ...call(SBI_EID.BASE, 3, [SBI_EID.HSM]), A.add(0x1d, a1, 0), ...call(SBI_EID.BASE, 3, [0x1234567]), A.add(0x1e, a1, 0), ...call(SBI_EID.BASE, 1)]);
    m.run();
    expect(m.x(0x1c)).toBe(2n << 24n);
    expect(m.x(0x1d)).toBe(1n);
    expect(m.x(0x1e)).toBe(0n);
    expect(m.x(a1)).toBe(7n);
    expect(m.x(a0)).toBe(0n);
  });

  it('unknown extensions return SBI_ERR_NOT_SUPPORTED in a0', () => {
    const m = sbiMachine(call(0x7777777, 0));
    m.run();
    expect(BigInt.asIntN(64, m.x(a0))).toBe(BigInt(SBI_ERR.NOT_SUPPORTED));
  });

  it('a Xen hypercall leaves the run loop with reason hypercall; the result comes back in a1', () => {
    const m = sbiMachine([...call(XEN_SBI_EID, 17 /* xen_version */, [0, 0x1234]), A.add(0x1c, a1, 0)]);
    const exit = m.run();
    expect(exit.reason).toBe('hypercall');
    const hc = m.hart.hypercall();
    expect(hc.op).toBe(17);
    expect(hc.args[1]).toBe(0x1234n);
    m.hart.completeHypercall(0x4_0013n);
    expect(m.run().reason).toBe('wfi');
    expect(m.x(0x1c)).toBe(0x4_0013n);
    expect(m.x(a0)).toBe(0n);
  });

  it('DBCN console_write and the legacy putchar reach the console', () => {
    const out: number[] = [];
    const text = new TextEncoder().encode('ok!');
    const m = sbiMachine([...call(SBI_EID.DBCN, 0, [3, DATA, 0]), ...call(SBI_EID.LEGACY_CONSOLE_PUTCHAR, 0, [0x0a])], out);
    m.ram.write(DATA, text);
    m.run();
    expect(String.fromCharCode(...out)).toBe('ok!\n');
  });

  it('TIME set_timer raises a supervisor timer interrupt at the deadline', () => {
    const m = sbiMachine([li(t0, 0x20), A.csrw(0x104, t0), A.csrrsi(0, 0x100, 2), li(t0, 0x8000_1000), A.csrw(0x105, t0), ...call(SBI_EID.TIME, 0, [0]), li(a2, 1)]);
    m.ram.write(0x8000_1000, A.assemble([A.csrw(0x104, 0), A.wfi()]));
    m.run();
    expect(m.csr('scause')).toBe((1n << 63n) | 5n);
    expect(m.x(a2)).toBe(0n);
  });

  it('SRST system_reset powers the guest off (exit reason shutdown)', () => {
    const exit = sbiMachine(call(SBI_EID.SRST, 0, [0, 0])).run();
    expect(exit.reason).toBe('shutdown');
    expect(exit.shutdown).toEqual({ kind: 'poweroff', code: 0 });
  });

  it('HSM hart_start starts a stopped hart at the given address with a0 = hartid, a1 = opaque', () => {
    const other = VcpuState.create(1);
    other.i32[W.HSM] = 1;
    const m = sbiMachine([...call(SBI_EID.HSM, 0, [1, 0x8000_4000, 0xabc]), ...call(SBI_EID.HSM, 2, [1])], [], undefined);
    (m.hart.sbi as unknown as { platform: { harts: VcpuState[] } }).platform.harts = [m.state, other];
    m.run();
    expect(other.pc).toBe(0x8000_4000n);
    expect(other.reg(a0)).toBe(1n);
    expect(other.reg(a1)).toBe(0xabcn);
    expect(other.priv).toBe(1);
    expect(m.x(a1)).toBe(0n); // get_status: STARTED (start pending reads as started)
  });

  it('a trap the guest did not delegate has nowhere to go: exit reason fault', () => {
    const m = sbiMachine([li(t0, 0x4000_0000), A.ld(a0, t0, 0)]);
    m.state.setCsr(2 /* medeleg */, 0, 0);
    const exit = m.run();
    expect(exit.reason).toBe('fault');
    expect(exit.fault?.cause).toBe(5);
  });
});
