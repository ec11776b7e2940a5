/**
 * `xl`: the toolstack's command line, with real xl's commands, options,
 * output and exit codes (tools/xl).  It finds the stack through
 * $XENBOX_RUN_DIR (default ./run in the repository).
 */
import { Command } from 'commander';
import { XenError } from '@xenbox/abi';
import { findDomain, findDomid, openXlContext, type XlContext } from '../xl/context.js';
import { formatInfo, infoLines } from '../xl/info.js';
import { dryBlockAttach, dryNetworkAttach, dryVcpuPin } from '../xl/dry-run.js';
import { formatList, formatUptime, formatVmList } from '../xl/list.js';
import { createDryRun, xlCreate, xlDestroy, xlMonitor } from '../xl/create.js';
import { attachConsole } from '../xl/console-client.js';
import { xlVncviewer } from '../xl/vncviewer.js';
import { xlShutdown, xlShutdownAll } from '../xl/shutdown.js';
import { runDirLayout } from '@xenbox/abi';
import { XlFailure } from '../xl/failure.js';
import { xlVcpuList, xlVcpuPin, xlVcpuSet } from '../xl/vcpu.js';
import { xlSchedCredit2, xlSchedRtds } from '../xl/sched.js';
import { xlCpupoolCpuAdd, xlCpupoolCpuRemove, xlCpupoolCreate, xlCpupoolDestroy, xlCpupoolList, xlCpupoolMigrate, xlCpupoolRename } from '../xl/cpupool.js';
import { xlTop } from '../xl/top.js';
import { formatListLong } from '../xl/list-long.js';
import { xlMemMax, xlMemSet, xlRename } from '../xl/memory.js';
import { loadUserdata } from '../libxl/userdata.js';
import { xlBlockAttach, xlBlockDetach, xlBlockList, xlNetworkAttach, xlNetworkDetach, xlNetworkList } from '../xl/devices.js';

/** Every xl command (xl_cmdtable.c): what xenbox has not built yet says so instead of pretending. */
const XL_COMMANDS = ['create', 'config-update', 'list', 'destroy', 'shutdown', 'reboot', 'pci-attach', 'pci-detach', 'pci-list', 'pci-assignable-add', 'pci-assignable-remove', 'pci-assignable-list', 'pause', 'unpause', 'console', 'vncviewer', 'save', 'migrate', 'restore', 'migrate-receive', 'suspend', 'resume', 'dump-core', 'cd-insert', 'cd-eject', 'mem-max', 'mem-set', 'button-press', 'vcpu-list', 'vcpu-pin', 'vcpu-set', 'vm-list', 'info', 'sharing', 'sched-credit', 'sched-credit2', 'sched-rtds', 'domid', 'domname', 'rename', 'trigger', 'sysrq', 'debug-keys', 'set-parameters', 'dmesg', 'top', 'network-attach', 'network-list', 'network-detach', 'channel-list', 'block-attach', 'block-list', 'block-detach', 'vtpm-attach', 'vtpm-list', 'vtpm-detach', 'uptime', 'claims', 'cpupool-create', 'cpupool-list', 'cpupool-destroy', 'cpupool-rename', 'cpupool-cpu-add', 'cpupool-cpu-remove', 'cpupool-migrate', 'cpupool-numa-split', 'getenforce', 'setenforce', 'loadpolicy', 'remus', 'devd', 'psr-hwinfo', 'qemu-monitor-command', 'xenstore-quota-get', 'xenstore-quota-set'];

/** Run one command with a dom0 connection; errors print as xl prints them and exit 1 (EXIT_FAILURE). */
function withContext(fn: (ctx: XlContext, ...args: never[]) => Promise<void>) {
  return async (...args: unknown[]) => {
    let ctx: XlContext | null = null;
    try {
      ctx = await openXlContext();
      await fn(ctx, ...(args as never[]));
    } catch (e) {
      if (e instanceof XlFailure) {
        process.stderr.write(e.message + '\n');
        process.exitCode = e.exitCode;
        return;
      }
      const msg = e instanceof XenError ? (e.errno === 'ESRCH' ? `Error: ${e.detail}` : `xl: ${e.message}`) : `xl: ${(e as Error).message}`;
      process.stderr.write(msg + '\n');
      process.exitCode = 1;
    } finally {
      await ctx?.close();
    }
  };
}

const out = (s: string): void => void process.stdout.write(s);

const program = new Command('xl')
  .description('xenbox toolstack (Xen xl)')
  .showHelpAfterError()
  .enablePositionalOptions()
  .option('-N', 'dry run: parse and print, do nothing (block-attach, network-attach, vcpu-pin, create)');

const dryRun = (): boolean => Boolean(program.opts<{ N?: boolean }>().N);

/** A dry run needs no stack: print or fail like xl (exit 1, nothing on stdout). */
function dry(run: () => string): void {
  try {
    out(run());
  } catch (e) {
    process.stderr.write(`${e instanceof XenError ? e.detail : (e as Error).message}\n`);
    process.exitCode = 1;
  }
}

program
  .command('mem-set')
  .description('set the current memory usage (balloon target) of a domain')
  .argument('<domain>')
  .argument('<mem>', "size in MiB, or with a b/k/m/g suffix")
  .action(withContext((ctx, dom: string, mem: string) => xlMemSet(ctx, dom, mem)));

program
  .command('mem-max')
  .description('set the maximum amount of memory a domain may have')
  .argument('<domain>')
  .argument('<mem>', "size in MiB, or with a b/k/m/g suffix")
  .action(withContext((ctx, dom: string, mem: string) => xlMemMax(ctx, dom, mem)));

program
  .command('rename')
  .description('rename a domain')
  .argument('<domain>')
  .argument('<new-name>')
  .action(withContext((ctx, dom: string, name: string) => xlRename(ctx, dom, name)));

program
  .command('block-attach')
  .description('create a new virtual block device (xl-disk-configuration(5) spec)')
  .argument('<domain>')
  .argument('<spec...>')
  .action((dom: string, spec: string[]) => {
    if (dryRun()) return dry(() => dryBlockAttach(spec));
    return withContext((ctx) => xlBlockAttach(ctx, dom, spec))();
  });

program
  .command('block-list')
  .description('list virtual block devices of domains')
  .argument('<domain...>')
  .action(withContext(async (ctx, doms: string[]) => out(await xlBlockList(ctx, doms))));

program
  .command('block-detach')
  .description('destroy a domain\'s virtual block device')
  .option('-f, --force', 'remove without waiting for the backend to close')
  .argument('<domain>')
  .argument('<vdev>')
  .action(withContext((ctx, dom: string, vdev: string, o: { force?: boolean }) => xlBlockDetach(ctx, dom, vdev, Boolean(o.force))));

program
  .command('network-attach')
  .description('create a new virtual network device (xl-network-configuration(5) spec)')
  .argument('<domain>')
  .argument('[spec...]')
  .action((dom: string, spec: string[]) => {
    if (dryRun()) return dry(() => dryNetworkAttach(spec));
    return withContext((ctx) => xlNetworkAttach(ctx, dom, spec))();
  });

program
  .command('network-list')
  .description('list virtual network interfaces of domains')
  .argument('<domain...>')
  .action(withContext(async (ctx, doms: string[]) => out(await xlNetworkList(ctx, doms))));

program
  .command('network-detach')
  .description('destroy a domain\'s virtual network device')
  .argument('<domain>')
  .argument('<devid|mac>')
  .action(withContext((ctx, dom: string, which: string) => xlNetworkDetach(ctx, dom, which)));

program
  .command('list')
  .alias('li')
  .description('list information about all or some domains')
  .option('-v, --verbose', 'also UUID, shutdown reason, security label')
  .option('-l, --long', 'the domain configurations as JSON')
  .argument('[domains...]')
  .action(
    withContext(async (ctx, domains: string[], o: { verbose?: boolean; long?: boolean }) => {
      const list = domains.length ? await Promise.all(domains.map((d) => findDomain(ctx, d))) : await ctx.hv.call('sysctl.getdomaininfolist', {});
      if (o.long) return out(formatListLong(list.map((info) => ({ info, cfg: loadUserdata(ctx.runDir, info.domid) }))));
      out(formatList(list, o.verbose));
    }),
  );

program
  .command('vm-list')
  .description('list guest domains, excluding dom0')
  .action(withContext(async (ctx) => out(formatVmList(await ctx.hv.call('sysctl.getdomaininfolist', {})))));

program
  .command('info')
  .description('get information about the host')
  .argument('[field]')
  .action(
    withContext(async (ctx, field?: string) => {
      const [physinfo, version] = await Promise.all([ctx.hv.call('sysctl.physinfo', {}), ctx.hv.call('xen_version', {})]);
      out(formatInfo(infoLines({ physinfo, version, scheduler: 'credit2' }), field));
    }),
  );

program
  .command('dmesg')
  .description('read and/or clear the hypervisor console buffer')
  .option('-c, --clear', 'clear the buffer after reading')
  .action(withContext(async (ctx, o: { clear?: boolean }) => out((await ctx.hv.call('console_io.read', { clear: o.clear ?? false })).text)));

program
  .command('uptime')
  .description('print the uptime of all or some domains')
  .option('-s', 'short output')
  .argument('[domains...]')
  .action(
    withContext(async (ctx, domains: string[], o: { s?: boolean }) => {
      const list = domains.length ? await Promise.all(domains.map((d) => findDomain(ctx, d))) : await ctx.hv.call('sysctl.getdomaininfolist', {});
      out(formatUptime(list, o.s ?? false));
    }),
  );

program
  .command('domid')
  .description('convert a domain name to its domid')
  .argument('<name>')
  .action(
    withContext(async (ctx, name: string) => {
      const d = (await ctx.hv.call('sysctl.getdomaininfolist', {})).find((x) => x.name === name);
      if (!d) throw new XenError('ESRCH', `Can't get domid of domain name '${name}', maybe this domain does not exist.`);
      out(`${d.domid}\n`);
    }),
  );

program
  .command('domname')
  .description('convert a domid to its domain name')
  .argument('<domid>')
  .action(
    withContext(async (ctx, id: string) => {
      if (!/^\d+$/.test(id)) throw new XenError('EINVAL', 'Invalid domain id.');
      const d = (await ctx.hv.call('sysctl.getdomaininfolist', {})).find((x) => x.domid === Number(id));
      if (!d) throw new XenError('ESRCH', `Can't get domain name of domain id '${id}', maybe this domain does not exist.`);
      out(`${d.name}\n`);
    }),
  );

program
  .command('destroy')
  .description('terminate a domain immediately')
  .argument('<domain>')
  .action(withContext(async (ctx, spec: string) => xlDestroy(ctx, await findDomid(ctx, spec))));

for (const [cmd, op, what] of [
  ['pause', 'domctl.pausedomain', 'pause execution of a domain'],
  ['unpause', 'domctl.unpausedomain', 'unpause a paused domain'],
] as const) {
  program
    .command(cmd)
    .description(what)
    .argument('<domain>')
    .action(withContext(async (ctx, spec: string) => void (await ctx.hv.call(op, { domid: await findDomid(ctx, spec) }))));
}

program
  .command('create')
  .description('create a domain from a config file')
  .argument('<file>', 'xl.cfg file')
  .argument('[overrides...]', 'KEY=VALUE settings that override the file')
  .option('-p', 'leave the domain paused after it is created')
  .option('-c', 'connect to the console after the domain is created')
  .option('-e', 'do not wait in the background for the death of the domain')
  .option('-F', 'run in foreground until death of the domain')
  .option('-n, --dryrun', 'dry run: print the configuration')
  .action((file: string, overrides: string[], o: { p?: boolean; c?: boolean; e?: boolean; F?: boolean; dryrun?: boolean }) =>
    o.dryrun || dryRun()
      ? dry(() => createDryRun(file, overrides))
      : withContext(async (ctx) => void (await xlCreate(ctx, file, overrides, { paused: o.p, console: o.c, noMonitor: o.e, foreground: o.F })))(),
  );

program
  .command('__monitor', { hidden: true })
  .argument('<domid>')
  .argument('<file>')
  .argument('[overrides...]')
  .action(withContext(async (ctx, domid: string, file: string, overrides: string[]) => xlMonitor(ctx, Number(domid), file, overrides)));

program
  .command('console')
  .description("attach to a domain's console (Ctrl-] detaches)")
  .argument('<domain>')
  .option('-t <type>', 'console type: pv or serial (xenbox has one console per guest)')
  .action(
    withContext(async (ctx, spec: string) => {
      const domid = await findDomid(ctx, spec);
      await ctx.close();
      await attachConsole(runDirLayout(ctx.runDir).consoleSocket, domid);
    }),
  );

program
  .command('vncviewer')
  .description("run vncviewer on a domain's VNC console (vnc = 1)")
  .argument('<domain>')
  .option('-a, --autopass', "give vncviewer the domain's VNC password on its stdin")
  .action(withContext(async (ctx, spec: string, o: { autopass?: boolean }) => void (process.exitCode = await xlVncviewer(ctx, spec, { autopass: o.autopass === true }))));

for (const [cmd, reason] of [
  ['shutdown', 'poweroff'],
  ['reboot', 'reboot'],
] as const) {
  program
    .command(cmd)
    .description(`issue a ${reason} request to a domain`)
    .argument('[domain]')
    .option('-a, --all', `${reason} all guest domains`)
    .option('-w, --wait', 'wait for the domain(s) to complete the shutdown')
    .option('-F', 'fall back to a hypervisor-initiated shutdown if the guest has no PV control interface')
    .action(
      withContext(async (ctx, spec: string | undefined, o: { all?: boolean; wait?: boolean; F?: boolean }) => {
        if (o.all && spec !== undefined) throw new XlFailure(`${cmd} -a does not take a domain argument`);
        if (!o.all && spec === undefined) throw new XlFailure(`'xl ${cmd}' requires at least 1 argument.\n\nUsage: xl [-v] ${cmd} [options] <-a|Domain>`, 2);
        if (o.all) return xlShutdownAll(ctx, reason, { wait: o.wait, force: o.F });
        return xlShutdown(ctx, await findDomid(ctx, spec!), reason, { wait: o.wait, force: o.F });
      }),
    );
}

// ---------------------------------------------------------------- vCPUs and scheduling (xl_vcpu.c, xl_sched.c, xl_cpupool.c)

/** Options that may be given several times (xl's getopt loops). */
const collect = (v: string, prev: string[]) => [...prev, v];

program
  .command('vcpu-list')
  .description('list the VCPUs for all/some domains')
  .argument('[domains...]')
  .action(withContext(async (ctx, domains: string[]) => out(await xlVcpuList(ctx, domains))));

program
  .command('vcpu-pin')
  .description('set which CPUs a VCPU can use (hard, and optionally soft, affinity; "-" leaves one alone)')
  .option('-f, --force', 'also when the affinity was set by the guest (not with "all")')
  .argument('<domain>')
  .argument('<vcpu>', 'a vCPU number or "all"')
  .argument('<hard>', 'a CPULIST, or "-"')
  .argument('[soft]', 'a CPULIST, or "-"')
  .action((dom: string, vcpu: string, hard: string, soft: string | undefined, o: { force?: boolean }) =>
    dryRun() ? dry(() => dryVcpuPin(hard)) : withContext(async (ctx) => xlVcpuPin(ctx, dom, vcpu, hard, soft, o.force ?? false))(),
  );

program
  .command('vcpu-set')
  .description('set the number of active VCPUs allowed for the domain')
  .option('-i, --ignore-host', "don't limit the vCPU count to the host's pCPUs")
  .argument('<domain>')
  .argument('<vcpus>')
  .action(withContext(async (ctx, dom: string, n: string, o: { ignoreHost?: boolean }) => xlVcpuSet(ctx, dom, n, o.ignoreHost ?? false)));

program
  .command('sched-credit2')
  .description('get/set credit2 scheduler parameters')
  .option('-d, --domain <domain>', 'domain to show or modify')
  .option('-w, --weight <weight>', 'weight (1..65535); twice the weight gets twice the CPU under contention')
  .option('-c, --cap <cap>', 'cap in % of one pCPU (0 = none)')
  .option('-s, --schedparam', "show or modify the pool's scheduler parameters")
  .option('-r, --ratelimit_us <us>', 'ratelimit in microseconds (with -s)')
  .option('-p, --cpupool <pool>', 'restrict to this cpupool')
  .action(
    withContext(async (ctx, o: { domain?: string; weight?: string; cap?: string; schedparam?: boolean; ratelimit_us?: string; cpupool?: string }) =>
      out(await xlSchedCredit2(ctx, { domain: o.domain, weight: o.weight, cap: o.cap, schedparam: o.schedparam, ratelimit: o.ratelimit_us, cpupool: o.cpupool })),
    ),
  );

program
  .command('sched-rtds')
  .description('get/set rtds scheduler parameters')
  .option('-d, --domain <domain>', 'domain to show or modify')
  .option('-v, --vcpuid <vcpu>', 'vCPU to show or modify, or "all" (repeatable)', collect, [])
  .option('-p, --period <us>', 'period in microseconds (repeatable, one per -v)', collect, [])
  .option('-b, --budget <us>', 'budget in microseconds (repeatable, one per -v)', collect, [])
  .option('-e, --extratime <0|1>', 'run in idle time beyond the budget (repeatable, one per -v)', collect, [])
  .option('-c, --cpupool <pool>', 'restrict to this cpupool')
  .action(
    withContext(async (ctx, o: { domain?: string; vcpuid: string[]; period: string[]; budget: string[]; extratime: string[]; cpupool?: string }) =>
      out(await xlSchedRtds(ctx, { domain: o.domain, vcpus: o.vcpuid, periods: o.period, budgets: o.budget, extratimes: o.extratime, cpupool: o.cpupool })),
    ),
  );

program
  .command('cpupool-list')
  .description('list cpupools')
  .option('-c, --cpus', 'print the CPU list instead of counts')
  .argument('[pool]')
  .action(withContext(async (ctx, pool: string | undefined, o: { cpus?: boolean }) => out(await xlCpupoolList(ctx, pool, o.cpus ?? false))));

program
  .command('cpupool-create')
  .description('create a cpupool from a config file and/or KEY=VALUE settings (name=, sched=, cpus=, nodes=)')
  .option('-f, --defconfig <file>', 'config file')
  .option('-n, --dryrun', 'print the pool, create nothing')
  .argument('[config...]', 'a config file and/or KEY=VALUE settings')
  .action(withContext(async (ctx, args: string[], o: { defconfig?: string; dryrun?: boolean }) => out(await xlCpupoolCreate(ctx, args, { file: o.defconfig, dryrun: o.dryrun }))));

program
  .command('cpupool-destroy')
  .description('deactivate a cpupool')
  .argument('<pool>')
  .action(withContext(async (ctx, pool: string) => xlCpupoolDestroy(ctx, pool)));

program
  .command('cpupool-rename')
  .description('rename a cpupool')
  .argument('<pool>')
  .argument('<newname>')
  .action(withContext(async (ctx, pool: string, name: string) => xlCpupoolRename(ctx, pool, name)));

program
  .command('cpupool-cpu-add')
  .description('add CPUs to a cpupool')
  .argument('<pool>')
  .argument('<cpus>', 'a CPULIST: 1,5,10-16,^13 or node:0,nodes:2-3')
  .action(withContext(async (ctx, pool: string, cpus: string) => xlCpupoolCpuAdd(ctx, pool, cpus)));

program
  .command('cpupool-cpu-remove')
  .description('remove CPUs from a cpupool')
  .argument('<pool>')
  .argument('<cpus>', 'a CPULIST: 1,5,10-16,^13 or node:0,nodes:2-3')
  .action(withContext(async (ctx, pool: string, cpus: string) => xlCpupoolCpuRemove(ctx, pool, cpus)));

program
  .command('cpupool-migrate')
  .description('move a domain into a cpupool')
  .argument('<domain>')
  .argument('<pool>')
  .action(withContext(async (ctx, dom: string, pool: string) => xlCpupoolMigrate(ctx, dom, pool)));

program
  .command('top')
  .description("one batch of xentop's domain table (real xl runs xentop): CPU(%) over -d seconds")
  .option('-d, --delay <seconds>', 'seconds between the two CPU samples', '1')
  .action(
    withContext(async (ctx, o: { delay: string }) => {
      const delay = Number(o.delay);
      if (!(delay > 0 && delay <= 60)) throw new XlFailure(`xl top: -d takes seconds from 0 to 60, not '${o.delay}'`);
      out(await xlTop(ctx, delay));
    }),
  );

const known = new Set(program.commands.flatMap((c) => [c.name(), ...c.aliases()]));
for (const cmd of XL_COMMANDS.filter((c) => !known.has(c))) {
  program
    .command(cmd, { hidden: true })
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => {
      process.stderr.write(`xl: '${cmd}' is a real xl command that xenbox does not implement yet\n`);
      process.exitCode = 1;
    });
}

await program.parseAsync();
