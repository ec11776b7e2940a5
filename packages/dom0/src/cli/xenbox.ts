/**
 * `xenbox`: bring a whole stack up and down, look at it, break it on purpose.
 *
 *   xenbox up [--run-dir DIR] [--detach] [--config FILE]
 *   xenbox status [--json] | down | kill NAME | restart NAME | logs [NAME] [-f]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { XenError, runDirLayout, type ProcessNotice, type ServiceStatus } from '@xenbox/abi';
import { createLogger, flushLogger } from '@xenbox/libxen';
import { defaultRunDir } from '../run-dir-default.js';
import { callSupervisor } from '../supervisor/control-client.js';
import { parseDuration, runChaos } from '../supervisor/chaos.js';
import { followLogs, logFiles, readLogs } from '../supervisor/log-view.js';
import { isAlive, leftoverProcesses, liveSupervisor, refuseIfRunning, removeRuntimeFiles } from '../supervisor/run-dir.js';
import { loadStackConfig } from '../supervisor/stack-config.js';
import { formatStatusTable } from '../supervisor/status-table.js';
import { Supervisor } from '../supervisor/supervisor.js';

const program = new Command('xenbox').description("xenbox: Xen's disaggregated architecture as processes. Runs and supervises a stack.").showHelpAfterError();

const runDirOf = (o: { runDir?: string }) => resolve(o.runDir ?? defaultRunDir());
const clock = () => new Date().toISOString().slice(11, 19);

/** Print an error the way the CLI reports every failure, and exit 1. */
function die(e: unknown): never {
  const msg = e instanceof XenError ? e.message : e instanceof Error ? e.message : String(e);
  process.stderr.write(`xenbox: ${msg}\n`);
  process.exit(1);
}

function notifyParent(n: ProcessNotice): void {
  if (process.send && process.connected) {
    process.send(n);
    process.disconnect();
  }
}

/** Run the supervisor in this process until the stack is down. */
async function runSupervisor(runDir: string, configFile: string | undefined, quiet: boolean): Promise<void> {
  const config = loadStackConfig(configFile);
  refuseIfRunning(runDir);
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const log = createLogger(runDir, 'xenbox');
  const sup = new Supervisor({ runDir, config, log });
  const say = (line: string) => !quiet && process.stdout.write(line + '\n');
  sup.on('change', (ev) => say(`${clock()} ${ev.service.name.padEnd(12)} ${ev.message}`));
  sup.on('guest', (line) => say(`${clock()} ${line}`));
  sup.on('stopped', (code) => {
    say(`${clock()} stack is down`);
    flushLogger(log);
    process.exit(code);
  });
  const stop = (sig: string) => {
    say(`${clock()} ${sig}: bringing the stack down`);
    void sup.down(sig);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    await sup.up();
  } catch (e) {
    log.fatal({ err: e }, 'stack did not come up');
    notifyParent({ type: 'fatal', message: (e as Error).message });
    if (e instanceof XenError && e.errno === 'EBUSY') die(e);
    await sup.down('start failed', 1);
    die(e);
  }
  if (sup.recovery && (sup.recovery.stalePid !== null || sup.recovery.killed.length)) {
    say(`${clock()} recovered ${runDir}: its supervisor (pid ${sup.recovery.stalePid ?? '?'}) had died; cleaned up ${sup.recovery.killed.length} leftover process(es)`);
  }
  say('\n' + formatStatusTable(sup.status()) + '\n');
  say(`stack is up in ${runDir}; Ctrl-C brings it down`);
  notifyParent({ type: 'ready', domid: 0 });
}

/** `up --detach`: start the supervisor as a background process and return once the stack is up. */
async function detach(runDir: string, configFile: string | undefined): Promise<void> {
  refuseIfRunning(runDir);
  mkdirSync(runDirLayout(runDir).logs, { recursive: true, mode: 0o700 });
  const out = openSync(runDirLayout(runDir).logFile('xenbox').replace(/\.log$/, '.out'), 'a', 0o600);
  const args = [process.argv[1]!, 'up', '--run-dir', runDir, '--daemon', ...(configFile ? ['--config', configFile] : [])];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out, 'ipc'] });
  const notice = await new Promise<ProcessNotice | null>((res) => {
    child.once('message', (m: ProcessNotice) => res(m));
    child.once('exit', () => res(null));
  });
  if (!notice || notice.type !== 'ready') die(new XenError('EIO', `the stack did not come up: ${notice?.type === 'fatal' ? notice.message : 'supervisor exited'}; see ${runDirLayout(runDir).logs}`));
  child.unref();
  child.disconnect?.();
  const status = await callSupervisor(runDir, 'status', {});
  console.log(formatStatusTable(status.services));
  console.log(`stack is up in ${runDir} (supervisor pid ${child.pid})`);
  const failed = status.services.filter((s: ServiceStatus) => s.state === 'failed');
  if (failed.length) die(new XenError('EIO', `failed to start: ${failed.map((s) => `${s.name} (${s.lastExit})`).join(', ')}`));
  process.exit(0);
}

program
  .command('up')
  .description('start the hypervisor, xenstored, dom0 services and driver domains')
  .option('--run-dir <dir>', 'run directory (sockets, tokens, logs)')
  .option('--detach', 'run the supervisor in the background')
  .option('--config <file>', 'stack config (JSON); default: one netback (xenbr0), one blkback')
  .addOption(new Option('--daemon', 'internal: the detached supervisor').hideHelp())
  .action(async (o: { runDir?: string; detach?: boolean; config?: string; daemon?: boolean }) => {
    const runDir = runDirOf(o);
    const config = o.config ? resolve(o.config) : undefined;
    try {
      if (config) loadStackConfig(config); // report a bad config before anything starts
      if (o.detach) await detach(runDir, config);
      else await runSupervisor(runDir, config, o.daemon ?? false);
    } catch (e) {
      die(e);
    }
  });

program
  .command('status')
  .description('show every service: NAME DOMID PID STATE UPTIME RESTARTS')
  .option('--run-dir <dir>', 'run directory')
  .option('--json', 'machine-readable output')
  .action(async (o: { runDir?: string; json?: boolean }) => {
    try {
      const st = await callSupervisor(runDirOf(o), 'status', {});
      console.log(o.json ? JSON.stringify(st, null, 2) : formatStatusTable(st.services));
    } catch (e) {
      die(e);
    }
  });

program
  .command('kill')
  .description('SIGKILL a service (to test isolation); the supervisor restarts it per policy')
  .argument('<name>')
  .option('--hold <duration>', 'keep it down this long before the restart (e.g. 5s), to see what guests do meanwhile')
  .option('--run-dir <dir>', 'run directory')
  .action(async (name: string, o: { runDir?: string; hold?: string }) => {
    try {
      const holdMs = o.hold === undefined ? 0 : parseDuration(o.hold, '--hold');
      const r = await callSupervisor(runDirOf(o), 'kill', { name, ...(holdMs ? { holdMs } : {}) });
      console.log(`killed ${r.name} (pid ${r.pid})${holdMs ? `; restarting in ${holdMs} ms` : ''}`);
    } catch (e) {
      die(e);
    }
  });

program
  .command('restart')
  .description('stop a service in order and start it again as a new domain')
  .argument('<name>')
  .option('--run-dir <dir>', 'run directory')
  .action(async (name: string, o: { runDir?: string }) => {
    try {
      await callSupervisor(runDirOf(o), 'restart', { name });
      const st = await callSupervisor(runDirOf(o), 'status', {});
      console.log(formatStatusTable(st.services.filter((s) => s.name === name)));
    } catch (e) {
      die(e);
    }
  });

program
  .command('chaos')
  .description('kill a service again and again and report how fast it comes back')
  .requiredOption('--target <name>', 'the service to kill (netback, blkback, xenstored, ...)')
  .option('--every <duration>', 'time between kills', '2s')
  .option('--for <duration>', 'how long to keep killing', '60s')
  .option('--kills <n>', 'stop after this many kills, even before --for is over')
  .option('--jitter <fraction>', 'vary each interval by up to this fraction', '0.5')
  .option('--seed <n>', 'seed for the intervals, to repeat a run', String(Date.now() % 100000))
  .option('--run-dir <dir>', 'run directory')
  .option('--json', 'print the report as JSON at the end')
  .option('--plot <file.svg>', "write an SVG of the guests' disk and network throughput with every kill and recovery marked")
  .action(async (o: { target: string; every: string; for: string; kills?: string; jitter: string; seed: string; runDir?: string; json?: boolean; plot?: string }) => {
    try {
      const kills = o.kills === undefined ? undefined : Number(o.kills);
      if (kills !== undefined && !(Number.isInteger(kills) && kills > 0)) throw new XenError('EINVAL', `--kills: '${o.kills}' is not a positive integer`);
      const jitter = Number(o.jitter);
      if (!(jitter >= 0 && jitter < 1)) throw new XenError('EINVAL', `--jitter: '${o.jitter}' must be a number from 0 up to (not including) 1`);
      const seed = Number(o.seed);
      if (!Number.isInteger(seed)) throw new XenError('EINVAL', `--seed: '${o.seed}' is not an integer`);
      const report = await runChaos(runDirOf(o), { target: o.target, everyMs: parseDuration(o.every, '--every'), forMs: parseDuration(o.for, '--for'), jitter, seed, ...(kills ? { kills } : {}), ...(o.plot ? { plot: o.plot } : {}) }, (l) => console.log(l));
      if (o.json) console.log(JSON.stringify(report));
    } catch (e) {
      die(e);
    }
  });

program
  .command('down')
  .description('stop everything in order: driver domains, dom0 services, xenstored, hypervisor')
  .option('--run-dir <dir>', 'run directory')
  .action(async (o: { runDir?: string }) => {
    const runDir = runDirOf(o);
    try {
      const pid = liveSupervisor(runDir);
      if (pid === null) {
        const left = leftoverProcesses(runDir);
        for (const p of left) process.kill(p, 'SIGKILL');
        removeRuntimeFiles(runDir);
        console.log(left.length ? `no supervisor in ${runDir}; killed ${left.length} leftover process(es)` : `no stack running in ${runDir}`);
        return;
      }
      await callSupervisor(runDir, 'down', {});
      const deadline = Date.now() + 30_000;
      while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (isAlive(pid)) die(new XenError('ETIMEDOUT', `supervisor pid ${pid} is still running after 30 s`));
      console.log(`stack in ${runDir} is down`);
    } catch (e) {
      die(e);
    }
  });

program
  .command('logs')
  .description('print the logs of one service, or all merged by time')
  .argument('[name]')
  .option('--run-dir <dir>', 'run directory')
  .option('-f, --follow', 'keep printing new lines')
  .action((name: string | undefined, o: { runDir?: string; follow?: boolean }) => {
    try {
      const files = logFiles(runDirLayout(runDirOf(o)).logs, name);
      for (const line of readLogs(files)) console.log(line);
      if (o.follow) followLogs(files, (l) => console.log(l));
    } catch (e) {
      die(e);
    }
  });

await program.parseAsync();
