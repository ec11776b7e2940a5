/**
 * CONTROL <command> [<args>...] (tools/xenstored/control.c), privileged only.
 * Output formats follow C xenstored so `xenstore-control` prints the same.
 */
import { XS_QUOTA_DESCRIPTIONS, XS_QUOTA_NAMES, XenError, type XsQuotaName } from '@xenbox/abi';
import { domidArg, OK, requirePrivileged, strings, type Reply, type Request } from './request.js';

type ControlFn = (req: Request, args: string[]) => Reply;

/** control.c's trace switches; "log +<switch>" / "-<switch>" toggle them. */
const TRACE_SWITCHES = ['obj', 'io', 'wrl', 'acc', 'tdb'] as const;

const pad = (s: string, n: number) => s.padEnd(n);
const num = (v: number, n = 8) => String(v).padStart(n);

/** control.c quota_show_current(); soft quotas are the warning level. */
function quotaSettings(values: Partial<Record<XsQuotaName, number>>, soft = false): string {
  let out = 'Quota settings:\n';
  for (const name of XS_QUOTA_NAMES) {
    const v = values[name];
    const descr = soft ? XS_QUOTA_DESCRIPTIONS[name].replace('(error level)', '(warning level)') : XS_QUOTA_DESCRIPTIONS[name];
    if (v !== undefined) out += `${pad(name, 17)}: ${num(v)} ${descr}\n`;
  }
  return out;
}

function expectArgs(args: string[], max: number): void {
  if (args.length > max) throw new XenError('EINVAL', `too many arguments`);
}

const log: ControlFn = (req, args) => {
  const t = req.xs.trace;
  if (args.length === 0) return 'Log switch settings:\n' + TRACE_SWITCHES.map((s) => `${pad(s, 8)}: ${t.has(s) ? 'on' : 'off'}\n`).join('');
  expectArgs(args, 1);
  const a = args[0]!;
  if (a === 'on') req.xs.logging = true;
  else if (a === 'off') req.xs.logging = false;
  else if ((a.startsWith('+') || a.startsWith('-')) && (TRACE_SWITCHES as readonly string[]).includes(a.slice(1))) {
    if (a.startsWith('+')) t.add(a.slice(1));
    else t.delete(a.slice(1));
  } else throw new XenError('EINVAL', `log takes on, off, +<switch> or -<switch> (switches: ${TRACE_SWITCHES.join(' ')})`);
  return OK;
};

const quota: ControlFn = (req, args) => {
  const q = req.xs.quotas;
  if (args.length === 0) return quotaSettings(q.hard);
  if (args[0] === 'set') {
    if (args.length !== 3) throw new XenError('EINVAL', 'quota set <name> <value>');
    const v = Number(args[2]);
    if (!Number.isInteger(v) || v < 1) throw new XenError('EINVAL', 'quota value must be at least 1');
    req.xs.setGlobalQuota(args[1]!, v);
    return OK;
  }
  if (args[0] === 'max') {
    expectArgs(args, 2);
    if (args.length === 2) {
      if (args[1] !== '-r') throw new XenError('EINVAL', 'quota max [-r]');
      q.resetMax();
    }
    return 'Max. seen accounting values:\n' + XS_QUOTA_NAMES.map((n) => `${pad(n, 17)}: ${num(q.maxSeen[n] ?? 0)}\n`).join('');
  }
  expectArgs(args, 1);
  const domid = domidArg(args[0]!);
  if (!req.xs.domains.get(domid)) throw new XenError('ENOENT', `domain ${domid} is not known`);
  const use = req.xs.usage(domid);
  return `Domain ${domid}:\n` + XS_QUOTA_NAMES.map((n) => `${pad(n, 17)}: ${num(use[n])} (max ${num(Math.max(use[n], q.domainMax(domid, n)))})\n`).join('');
};

const quotaSoft: ControlFn = (req, args) => {
  if (args.length === 0) return quotaSettings(req.xs.quotas.soft, true);
  if (args[0] === 'set' && args.length === 3) {
    const v = Number(args[2]);
    if (!Number.isInteger(v) || v < 1) throw new XenError('EINVAL', 'quota value must be at least 1');
    req.xs.setSoftQuota(args[1]!, v);
    return OK;
  }
  throw new XenError('EINVAL', 'quota-soft [set <name> <value>]');
};

const print: ControlFn = (req, args) => {
  if (args.length !== 1) throw new XenError('EINVAL', 'print <string>');
  req.xs.log.info({ control: args[0] }, `control: ${args[0]}`);
  return OK;
};

const check: ControlFn = (req, args) => {
  expectArgs(args, 0);
  req.xs.checkStore();
  return OK;
};

const memreport: ControlFn = (req, args) => {
  expectArgs(args, 1);
  const m = process.memoryUsage();
  req.xs.log.info({ nodes: req.xs.store.size, watches: req.xs.watches.count, heapUsed: m.heapUsed, rss: m.rss }, 'memreport');
  return OK;
};

const COMMANDS: Array<[string, ControlFn, string]> = [
  ['check', check, ''],
  ['log', log, '[on|off|+<switch>|-<switch>]'],
  ['memreport', memreport, '[<file>]'],
  ['print', print, '<string>'],
  ['quota', quota, '[set <name> <val>|<domid>|max [-r]]'],
  ['quota-soft', quotaSoft, '[set <name> <val>]'],
  ['help', (_req, args) => {
    expectArgs(args, 0);
    return COMMANDS.map(([name, , pars]) => `${pad(name, 15)} ${pars}\n`).join('');
  }, ''],
];

export function doControl(req: Request): Reply {
  requirePrivileged(req, 'CONTROL');
  const [cmd, ...args] = strings(req);
  if (cmd === undefined) throw new XenError('EINVAL', 'CONTROL needs a command');
  const entry = COMMANDS.find(([name]) => name === cmd);
  if (!entry) throw new XenError('EINVAL', `unknown control command ${JSON.stringify(cmd.slice(0, 32))}`);
  return entry[1](req, args);
}
