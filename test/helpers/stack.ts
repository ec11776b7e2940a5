/**
 * Start a whole stack (`xenbox up --detach`) in its own temp run dir and tear
 * it down afterwards, leaving no process and no file behind.
 */
import { execFile, spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceStatus } from '@xenbox/abi';
import { leftoverProcesses, liveSupervisor } from '@xenbox/dom0';
import { XENBOX_BIN, XL_BIN, tempRunDir } from './paths.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function xenbox(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((res) => {
    execFile(process.execPath, [XENBOX_BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

export class TestStack {
  constructor(readonly runDir: string) {}

  /**
   * `xenbox up --detach` in a fresh run dir.  Unless the test gives its own
   * --config, the stack starts no autostart guests (they would cost every
   * test a guest's worth of CPU).
   */
  static async up(tag: string, extraArgs: string[] = []): Promise<TestStack> {
    const stack = new TestStack(tempRunDir(tag));
    if (!extraArgs.includes('--config')) {
      const cfg = join(stack.runDir, 'no-guests.json');
      writeFileSync(cfg, JSON.stringify({ autostart: null }));
      extraArgs = [...extraArgs, '--config', cfg];
    }
    const r = await stack.run('up', '--detach', ...extraArgs);
    if (r.code !== 0) {
      await stack.destroy();
      throw new Error(`xenbox up failed (${r.code}): ${r.stderr}${r.stdout}`);
    }
    return stack;
  }

  /** Run `xl` against this stack with stdin closed (so `xl console` ends after printing what is there). */
  xl(...args: string[]): Promise<RunResult> {
    return new Promise((res) => {
      const child = spawn(process.execPath, [XL_BIN, ...args], { env: { ...process.env, XENBOX_RUN_DIR: this.runDir }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('close', (code) => res({ code: code ?? 1, stdout, stderr }));
    });
  }

  run(cmd: string, ...args: string[]): Promise<RunResult> {
    return xenbox([cmd, ...args, '--run-dir', this.runDir]);
  }

  async status(): Promise<ServiceStatus[]> {
    const r = await this.run('status', '--json');
    if (r.code !== 0) throw new Error(`xenbox status failed: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { services: ServiceStatus[] }).services;
  }

  async service(name: string): Promise<ServiceStatus> {
    const s = (await this.status()).find((x) => x.name === name);
    if (!s) throw new Error(`no service ${name}`);
    return s;
  }

  /** Poll until `pred` holds for the named service, or fail after `ms`. */
  async waitFor(name: string, pred: (s: ServiceStatus) => boolean, ms = 5000): Promise<ServiceStatus> {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = await this.service(name);
      if (pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`${name} did not reach the expected state: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Bring the stack down and make sure nothing it started survives. */
  async destroy(): Promise<void> {
    if (liveSupervisor(this.runDir) !== null) await this.run('down');
    for (const pid of leftoverProcesses(this.runDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // XENBOX_TEST_KEEP_RUNDIR=1 keeps every log for a post-mortem of a flaky run.
    if (process.env.XENBOX_TEST_KEEP_RUNDIR) console.log(`kept run dir ${this.runDir}`);
    else rmSync(this.runDir, { recursive: true, force: true });
  }
}
