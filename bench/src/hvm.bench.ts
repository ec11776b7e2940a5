/**
 * `pnpm bench hvm`: the classic "PV drivers beat emulation" table — the
 * same 8 MiB read from the same raw image (a) through emulated virtio-blk
 * (Debian's U-Boot in an HVM guest: `virtio read`; its device model's
 * virtio-blk → the device model's blkfront → blkback), with the device model
 * in its stub domain and then in dom0 (device_model_stubdomain_override = 0:
 * the cost of isolation), and (b) through the PV kernel's own blkfront
 * (`dd if=xvda`, 64 KiB requests, a CRC-32 of each).
 *
 * Also the MMIO exit round trip (vCPU -> hypervisor -> device model ->
 * vCPU): U-Boot's `md.l` over a virtio-mmio slot, whose registers are
 * nearly all unmirrored, less `md.l` over as much RAM, per exit; against a
 * raw ZeroMQ echo of an ioreq-sized frame.
 *
 * Times are wall times from typing the command into `xl console` to the
 * next prompt, less the same console round trip for a command that does
 * nothing (measured in the same guest, same run).  Every read is checked:
 * U-Boot's `crc32` of what it read, and the PV kernel's own CRC, must equal
 * the host's CRC-32 of the image's first 8 MiB.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { encodeFrame, ipcEndpoint } from '@xenbox/abi';
import { result, type Benchmark, type BenchResult } from './harness.js';
import { echoOnce, startRawEcho } from './raw-echo.js';

const REPO = resolve(fileURLToPath(import.meta.url), '../../..');
const XENBOX = join(REPO, 'packages/dom0/bin/xenbox.js');
const XL = join(REPO, 'packages/dom0/bin/xl.js');
const KERNEL = join(REPO, 'packages/guests/images/pvkernel.elf');
const UBOOT = '/usr/lib/u-boot/qemu-riscv64/u-boot.bin';
const MIB = 8;
const SECTORS = (MIB << 20) / 512;
const RUNS = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** `xl console NAME`: type a line, wait for the prompt after it. */
class Console {
  private text = '';
  private readonly child: ChildProcessWithoutNullStreams;
  constructor(runDir: string, name: string, private readonly prompt: RegExp) {
    this.child = spawn(process.execPath, [XL, 'console', name], { env: { ...process.env, XENBOX_RUN_DIR: runDir }, stdio: 'pipe' });
    this.child.stdout.on('data', (b: Buffer) => (this.text += b.toString('latin1')));
  }
  async waitFor(what: string, re: RegExp, from = 0, ms = 120_000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!re.test(this.text.slice(from))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; console:\n${this.text.slice(-2000)}`);
      await sleep(2);
    }
    return this.text.slice(from);
  }
  type(s: string): void {
    this.child.stdin.write(s);
  }
  /** Run one command; its output and the wall time to the next prompt. */
  async run(cmd: string, ms = 120_000): Promise<{ out: string; ms: number }> {
    const from = this.text.length;
    const t0 = performance.now();
    this.type(cmd + '\r');
    // The prompt that follows the command's own echo (not one still on its way from before).
    const after = new RegExp(`${cmd.replace(/[.*+?^${}()|[\]\\$]/g, '\\$&')}[^]*${this.prompt.source}`);
    const out = await this.waitFor(`"${cmd}"`, after, from, ms);
    return { out, ms: performance.now() - t0 };
  }
  close(): void {
    this.child.kill();
  }
}

/** The median console round trip of a no-op command, and the median time of `cmd` less it. */
async function timed(con: Console, noop: string, cmd: string, check: (out: string) => void): Promise<{ rtt: number; ms: number }> {
  const rtts: number[] = [];
  for (let i = 0; i < 5; i++) rtts.push((await con.run(noop)).ms);
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await con.run(cmd);
    check(r.out);
    times.push(r.ms);
  }
  const rtt = median(rtts);
  return { rtt, ms: Math.max(median(times) - rtt, 0.001) };
}

export const benchmark: Benchmark = {
  name: 'hvm',
  description: `the same ${MIB} MiB disk read through emulated virtio-blk (U-Boot; device model in a stub domain / in dom0) and through the PV kernel's blkfront`,
  async run({ tmpDir, progress }) {
    if (!existsSync(UBOOT)) throw new Error(`${UBOOT} is missing: install Debian's u-boot-qemu`);
    const runDir = join(tmpDir, 'run');
    const stackCfg = join(tmpDir, 'stack.json');
    writeFileSync(stackCfg, JSON.stringify({ autostart: null }));
    execFileSync(process.execPath, [XENBOX, 'up', '--detach', '--run-dir', runDir, '--config', stackCfg], { stdio: 'ignore' });
    const env = { ...process.env, XENBOX_RUN_DIR: runDir };
    const xl = (...args: string[]) => execFileSync(process.execPath, [XL, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const img = join(tmpDir, 'disk.raw');
    const data = Buffer.alloc(2 * (MIB << 20));
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, i);
    writeFileSync(img, data);
    const want = crc32(data.subarray(0, MIB << 20)).toString(16).padStart(8, '0');
    const out: BenchResult[] = [];
    const uboot = async (name: string, extra: string): Promise<{ rtt: number; ms: number; chunked: number; exitUs: number }> => {
      const cfg = join(tmpDir, `${name}.cfg`);
      writeFileSync(cfg, `name = "${name}"\nbuilder = "hvm"\nmemory = 128\non_poweroff = "destroy"\ndisk = [ "${img},raw,hda,rw" ]\n${extra}\n`);
      xl('create', cfg);
      const con = new Console(runDir, name, /\r?\n=> $/);
      try {
        await con.waitFor('the autoboot countdown', /Hit any key to stop autoboot/);
        con.type('\r');
        await con.waitFor('the prompt', /=> $/);
        await con.run('virtio scan');
        // MMIO exits: md.l over the first disk's virtio-mmio slot (1,024 words, 4 of them mirrored, the rest
        // synchronous round trips to the device model), less md.l over as much RAM (the same printing).
        const mmio: number[] = [];
        const ram: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          mmio.push((await con.run('md.l 10008000 400')).ms);
          ram.push((await con.run('md.l 84000000 400')).ms);
        }
        const exitUs = (Math.max(median(mmio) - median(ram), 0) * 1000) / (0x400 - 4);
        const t = await timed(con, 'echo', `virtio read 84000000 0 ${SECTORS.toString(16)}`, (o) => {
          if (!o.includes(`${SECTORS} blocks read: OK`)) throw new Error(`virtio read failed: ${o}`);
        });
        const crc = (await con.run(`crc32 84000000 ${(MIB << 20).toString(16)}`)).out;
        if (!crc.includes(`==> ${want}`)) throw new Error(`U-Boot read the wrong bytes: crc32 ${crc}, host ${want}`);
        // The PV dd's request size: 64 KiB at a time in a hush loop, less the same loop printing the same lines.
        const loop = (body: string) => `setenv i 0; while itest $i < ${SECTORS.toString(16)}; do ${body}; setexpr i $i + 80; done`;
        const reads = await con.run(loop('virtio read 84000000 $i 80'));
        if ((reads.out.match(/128 blocks read: OK/g) ?? []).length !== SECTORS / 128) throw new Error(`the 64 KiB reads did not all succeed: ${reads.out.slice(-500)}`);
        const echoes = await con.run(loop('echo virtio read: device 0 block no. $i, count 128 ... 128 blocks read: OK'));
        return { ...t, chunked: Math.max(reads.ms - echoes.ms, 0.001), exitUs };
      } finally {
        con.close();
        xl('destroy', name);
      }
    };
    try {
      progress(`U-Boot: virtio read of ${MIB} MiB, device model in a stub domain`);
      const stub = await uboot('hb-stub', '');
      progress(`U-Boot: virtio read of ${MIB} MiB, device model in dom0`);
      const dom0 = await uboot('hb-dom0', 'device_model_stubdomain_override = 0');

      progress(`PV kernel: dd if=xvda count=${SECTORS} through its blkfront`);
      const cfg = join(tmpDir, 'hb-pv.cfg');
      writeFileSync(cfg, `name = "hb-pv"\ntype = "pvh"\nkernel = "${KERNEL}"\nmemory = 32\ncmdline = "shell"\ndisk = [ "${img},raw,xvda,rw" ]\n`);
      xl('create', cfg);
      const con = new Console(runDir, 'hb-pv', /pvkernel> $/);
      let pv: { rtt: number; ms: number } = { rtt: 0, ms: 0 };
      const guestRates: number[] = [];
      try {
        con.type('\r');
        await con.waitFor('the shell', /pvkernel> $/);
        pv = await timed(con, 'echo', `dd if=xvda count=${SECTORS}`, (o) => {
          const m = /dd: read \d+ sectors from xvda, crc32 ([0-9a-f]{8}), ([\d.]+) MB\/s/.exec(o);
          if (!m || m[1] !== want) throw new Error(`dd read the wrong bytes or failed: ${o} (host crc32 ${want})`);
          guestRates.push(Number(m[2]));
        });
      } finally {
        con.close();
        xl('destroy', 'hb-pv');
      }
      progress('raw ZeroMQ round trip (the baseline of an MMIO exit)');
      const raw = await startRawEcho(ipcEndpoint(join(tmpDir, 'raw-echo.sock')));
      const rawUs: number[] = [];
      try {
        const payload = encodeFrame({ id: 1, op: 'hvm.ioreq', args: { domid: 1, buffered: [], req: { id: 1, write: false, addr: 0x10008070, size: 4, value: 0 } } });
        for (let i = 0; i < 2000; i++) {
          const t = performance.now();
          await echoOnce(raw.dealer, payload);
          if (i >= 500) rawUs.push((performance.now() - t) * 1000);
        }
      } finally {
        raw.stop();
      }
      const mbs = (ms: number) => (MIB << 20) / 1e3 / ms;
      out.push(result('MMIO exit round trip (vCPU -> device model -> vCPU), stub domain; U-Boot md.l over a virtio slot', stub.exitUs, 'µs', median(rawUs), null));
      out.push(result('MMIO exit round trip, device model in dom0 (vs stub domain)', dom0.exitUs, 'µs', stub.exitUs, null));
      out.push(result(`virtio-blk, device model in its stub domain: ${MIB} MiB \`virtio read\` (U-Boot)`, mbs(stub.ms), 'MB/s', mbs(pv.ms), null));
      out.push(result(`virtio-blk, stub domain, as 128 x 64 KiB requests (a hush loop, its own cost taken out)`, mbs(stub.chunked), 'MB/s', mbs(pv.ms), null));
      out.push(result(`virtio-blk, device model in dom0 (vs stub domain)`, mbs(dom0.ms), 'MB/s', mbs(stub.ms), null));
      out.push(result(`virtio-blk, dom0, as 128 x 64 KiB requests (vs stub domain)`, mbs(dom0.chunked), 'MB/s', mbs(stub.chunked), null));
      out.push(result(`PV blkfront: ${MIB} MiB \`dd if=xvda\` (PV kernel, 64 KiB requests + CRC)`, mbs(pv.ms), 'MB/s', null, null));
      out.push(result('PV blkfront: the same dd, rate the guest measured', median(guestRates), 'MB/s', null, null));
      out.push(result('console round trip of a no-op command (U-Boot `echo`, stub domain)', stub.rtt, 'ms', pv.rtt, null));
    } finally {
      execFileSync(process.execPath, [XENBOX, 'down', '--run-dir', runDir], { stdio: 'ignore' });
    }
    return out;
  },
};
