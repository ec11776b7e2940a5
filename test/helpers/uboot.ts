/**
 * Driving Debian's U-Boot in an HVM guest from a test: `xl console` with a
 * pipe for the keyboard, a command typed at the `=>` prompt and what it
 * printed, and FAT images made with mkfs.vfat + mcopy.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { runDirLayout } from '@xenbox/abi';
import { join, resolve } from 'node:path';
import { REPO } from './paths.js';

export const UBOOT = '/usr/lib/u-boot/qemu-riscv64/u-boot.bin';
const XL_BIN = resolve(REPO, 'packages/dom0/bin/xl.js');

export const haveCommand = (cmd: string): boolean => ['/usr/sbin', '/sbin', '/usr/bin', '/bin'].some((d) => existsSync(join(d, cmd)));

/** Poll `f` until it gives something truthy; fail naming `what` (and what `explain` adds, e.g. a console) after `ms`. */
export async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 20_000, explain = (): string => ''): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${explain()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A guest's console log (xenconsoled's file) as text, '' before it exists. */
export function consoleText(runDir: string, name: string): string {
  const f = runDirLayout(runDir).consoleLog(name);
  return existsSync(f) ? readFileSync(f, 'latin1') : '';
}

/** An HVM guest's xl config in `runDir`: U-Boot's defaults (builder hvm, 128 MiB, one vCPU, destroy on poweroff and crash) plus `lines`. */
export function hvmConfig(runDir: string, name: string, lines: Record<string, string | number> = {}): string {
  const file = join(runDir, `${name}.cfg`);
  const body = Object.entries({ name: `"${name}"`, builder: '"hvm"', memory: 128, vcpus: 1, on_poweroff: '"destroy"', on_crash: '"destroy"', ...lines })
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n');
  writeFileSync(file, body + '\n');
  return file;
}

/** A FAT image of `mib` MiB holding `files`, made as a user would (mkfs.vfat, mcopy); `scratch` holds the files on the way. */
export function fatImage(path: string, mib: number, label: string, files: Record<string, string | Buffer>, scratch: string): void {
  execFileSync('dd', ['if=/dev/zero', `of=${path}`, 'bs=1M', `count=${mib}`], { stdio: 'ignore' });
  execFileSync('mkfs.vfat', ['-n', label, path], { stdio: 'ignore' });
  for (const [name, data] of Object.entries(files)) {
    const f = join(scratch, name);
    writeFileSync(f, data);
    execFileSync('mcopy', ['-i', path, f, `::${name}`]);
  }
}

export interface UbootConsole {
  /** Everything printed since the attach. */
  out(): string;
  type(s: string): void;
  /** Type `cmd` at the prompt; what it printed up to the next prompt. */
  run(cmd: string, ms?: number): Promise<string>;
  close(): void;
}

/** `xl console NAME` on the stack in `runDir`; `trace` sees each chunk as it arrives (ms since the attach). */
export function attachUboot(runDir: string, name: string, trace?: (ms: number, chunk: string) => void): UbootConsole {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [XL_BIN, 'console', name], { env: { ...process.env, XENBOX_RUN_DIR: runDir }, stdio: 'pipe' });
  let text = '';
  const t0 = performance.now();
  child.stdout.on('data', (b: Buffer) => {
    const chunk = b.toString('latin1');
    text += chunk;
    trace?.(performance.now() - t0, chunk);
  });
  const con: UbootConsole = {
    out: () => text,
    type: (s) => void child.stdin.write(s),
    run: async (cmd, ms = 20_000) => {
      const from = text.length;
      con.type(cmd + '\r');
      await until(`the prompt after "${cmd}"`, () => /\r?\n=> $/.test(text.slice(from)), ms, () => `; the console shows:\n${text.slice(from)}`);
      return text.slice(from);
    },
    close: () => void child.kill(),
  };
  return con;
}

/** Attach, stop the autoboot countdown with a key, and wait for the prompt. */
export async function ubootPrompt(runDir: string, name: string, ms = 30_000): Promise<UbootConsole> {
  const con = attachUboot(runDir, name);
  await until(`${name}'s autoboot countdown`, () => con.out().includes('Hit any key to stop autoboot'), ms);
  con.type('\r');
  await until(`${name}'s prompt`, () => /=> $/.test(con.out()), ms);
  return con;
}
