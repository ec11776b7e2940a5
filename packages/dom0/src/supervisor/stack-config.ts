/**
 * The stack config: which driver domains `xenbox up` starts besides the core
 * (hypervisor, xenstored, xenconsoled), their arguments, and the restart
 * policy.  A JSON file given with --config; without one, the built-in default
 * of DESIGN §11: one netback serving xenbr0 and one blkback.
 *
 *   {
 *     "services": [
 *       { "name": "netback", "kind": "netback", "args": { "bridges": ["xenbr0"] } },
 *       { "name": "blkback", "kind": "blkback", "restart": "on-failure" }
 *     ],
 *     "restart": { "policy": "always", "maxRestarts": 5, "windowSeconds": 60 },
 *     "hypervisor": { "pcpus": 2 }
 *   }
 *
 * hypervisor.pcpus: the pCPU worker threads guests run on (the hypervisor's
 * `--pcpus`); default the host's parallelism.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { REPO_ROOT } from '../run-dir-default.js';
import { RESTART_POLICIES, XenError, type RestartPolicy } from '@xenbox/abi';

export const DRIVER_DOMAIN_KINDS = ['netback', 'blkback'] as const;
export type DriverDomainKind = (typeof DRIVER_DOMAIN_KINDS)[number];

export interface ServiceConfig {
  name: string;
  kind: DriverDomainKind;
  args: Record<string, unknown>;
  restart: RestartPolicy;
}

export interface RestartConfig {
  policy: RestartPolicy;
  /** A service restarted more than this many times within windowSeconds is given up on. */
  maxRestarts: number;
  windowSeconds: number;
}

/** Options of the hypervisor process. */
export interface HypervisorConfig {
  /** `--pcpus N`: pCPU worker threads for guests' vCPUs (1..MAX_PCPUS); default the host's parallelism. */
  pcpus?: number;
}

/** The hypervisor's own --pcpus bound (packages/hypervisor/src/main.ts). */
export const MAX_PCPUS = 256;

export interface StackConfig {
  services: ServiceConfig[];
  restart: RestartConfig;
  /** Hypervisor options; absent = its defaults. */
  hypervisor?: HypervisorConfig;
  /** Directory of xl.cfg files to create once the services are up, or null for none. */
  autostart: string | null;
}

/** The example guests: examples/autostart in the repository. */
export const DEFAULT_AUTOSTART_DIR = resolve(REPO_ROOT, 'examples', 'autostart');

export const DEFAULT_RESTART: RestartConfig = { policy: 'always', maxRestarts: 5, windowSeconds: 60 };

export const DEFAULT_STACK_CONFIG: StackConfig = {
  services: [
    { name: 'netback', kind: 'netback', args: { bridges: ['xenbr0'] }, restart: 'always' },
    { name: 'blkback', kind: 'blkback', args: {}, restart: 'always' },
  ],
  restart: DEFAULT_RESTART,
  autostart: DEFAULT_AUTOSTART_DIR,
};

/** Names the core services take; a driver domain may not reuse them. */
export const RESERVED_SERVICE_NAMES = ['hypervisor', 'xenstored', 'xenconsoled', 'Domain-0'];
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

type Obj = Record<string, unknown>;

function fail(where: string, what: string): never {
  throw new XenError('EINVAL', `${where}: ${what}`);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(where: string, o: Obj, allowed: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(where, `unknown key '${k}' (expected one of ${allowed.join(', ')})`);
}

function parseRestart(where: string, v: unknown): RestartConfig {
  if (v === undefined) return { ...DEFAULT_RESTART };
  if (!isObj(v)) fail(where, 'must be an object');
  onlyKeys(where, v, ['policy', 'maxRestarts', 'windowSeconds']);
  const r = { ...DEFAULT_RESTART };
  if (v.policy !== undefined) r.policy = parsePolicy(`${where}.policy`, v.policy);
  if (v.maxRestarts !== undefined) {
    if (!Number.isInteger(v.maxRestarts) || (v.maxRestarts as number) < 0) fail(`${where}.maxRestarts`, 'must be a non-negative integer');
    r.maxRestarts = v.maxRestarts as number;
  }
  if (v.windowSeconds !== undefined) {
    if (typeof v.windowSeconds !== 'number' || v.windowSeconds <= 0) fail(`${where}.windowSeconds`, 'must be a positive number');
    r.windowSeconds = v.windowSeconds;
  }
  return r;
}

function parseHypervisor(where: string, v: unknown): HypervisorConfig | undefined {
  if (v === undefined) return undefined;
  if (!isObj(v)) fail(where, 'must be an object');
  onlyKeys(where, v, ['pcpus']);
  const h: HypervisorConfig = {};
  if (v.pcpus !== undefined) {
    if (!Number.isInteger(v.pcpus) || (v.pcpus as number) < 1 || (v.pcpus as number) > MAX_PCPUS) fail(`${where}.pcpus`, `must be an integer from 1 to ${MAX_PCPUS}`);
    h.pcpus = v.pcpus as number;
  }
  return h;
}

function parsePolicy(where: string, v: unknown): RestartPolicy {
  if (typeof v !== 'string' || !(RESTART_POLICIES as readonly string[]).includes(v)) fail(where, `must be one of ${RESTART_POLICIES.join(', ')}`);
  return v as RestartPolicy;
}

function parseService(where: string, v: unknown, defaultPolicy: RestartPolicy): ServiceConfig {
  if (!isObj(v)) fail(where, 'must be an object');
  onlyKeys(where, v, ['name', 'kind', 'args', 'restart']);
  if (typeof v.kind !== 'string' || !(DRIVER_DOMAIN_KINDS as readonly string[]).includes(v.kind)) fail(`${where}.kind`, `must be one of ${DRIVER_DOMAIN_KINDS.join(', ')}`);
  const name = v.name ?? v.kind;
  if (typeof name !== 'string' || !NAME_RE.test(name)) fail(`${where}.name`, 'must be 1-32 letters, digits, _ . - (starting with a letter or digit)');
  if (RESERVED_SERVICE_NAMES.includes(name)) fail(`${where}.name`, `'${name}' is reserved for a core service`);
  if (v.args !== undefined && !isObj(v.args)) fail(`${where}.args`, 'must be an object');
  return {
    name,
    kind: v.kind as DriverDomainKind,
    args: (v.args as Obj | undefined) ?? {},
    restart: v.restart === undefined ? defaultPolicy : parsePolicy(`${where}.restart`, v.restart),
  };
}

/** Validate a parsed stack config; errors name the file and the field. */
export function parseStackConfig(value: unknown, source = 'stack config', baseDir = process.cwd()): StackConfig {
  if (!isObj(value)) fail(source, 'must be a JSON object');
  onlyKeys(source, value, ['services', 'restart', 'autostart', 'hypervisor']);
  const hypervisor = parseHypervisor(`${source}: hypervisor`, value.hypervisor);
  const restart = parseRestart(`${source}: restart`, value.restart);
  const rawServices = value.services ?? DEFAULT_STACK_CONFIG.services;
  if (!Array.isArray(rawServices)) fail(`${source}: services`, 'must be a list');
  const services = rawServices.map((s, i) => parseService(`${source}: services[${i}]`, s, restart.policy));
  const seen = new Set<string>();
  for (const s of services) {
    if (seen.has(s.name)) fail(`${source}: services`, `two services are named '${s.name}'`);
    seen.add(s.name);
  }
  return { services, restart, autostart: parseAutostart(`${source}: autostart`, value.autostart, baseDir), ...(hypervisor && { hypervisor }) };
}

/** A directory relative to the config file's own; null turns autostart off. */
function parseAutostart(where: string, v: unknown, baseDir: string): string | null {
  if (v === undefined) return DEFAULT_AUTOSTART_DIR;
  if (v === null) return null;
  if (typeof v !== 'string' || v === '') fail(where, 'must be a directory path or null');
  return resolve(baseDir, v);
}

export function loadStackConfig(file: string | undefined): StackConfig {
  if (!file) return structuredClone(DEFAULT_STACK_CONFIG);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new XenError('ENOENT', `cannot read stack config ${file}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new XenError('EINVAL', `${file}: not valid JSON: ${(e as Error).message}`);
  }
  return parseStackConfig(value, file, dirname(resolve(file)));
}
