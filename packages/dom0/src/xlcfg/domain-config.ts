/**
 * From parsed xl.cfg settings to the typed DomainConfig the domain builder
 * takes: what tools/xl/xl_parse.c parse_config_data() does for the keys xenbox
 * implements, with libxl's defaults filled in.
 *
 * Legacy and x86-isms are mapped, with a note in `notes` (never an error):
 * - `type = "pv"` or no type: PV has no meaning on RISC-V; xenbox guests are
 *   PVH-style, so it becomes pvh;
 * - `builder = "hvm"` (deprecated since Xen 4.10) is `type = "hvm"`;
 * - `device_model = "..."` is ignored (as xl does): xenbox runs its own device
 *   model, in a stub domain unless device_model_stubdomain_override = 0;
 * - `kernel = ".../hvmloader"` for HVM is dropped (as xl does): xenbox HVM
 *   guests boot xenbox's own firmware.
 */
import { readFileSync } from 'node:fs';
import { XenError } from '@xenbox/abi';
import { configError, formatPos } from './lexer.js';
import { parseConfig, parseInto, type ConfigSetting, type ParsedConfig } from './parser.js';
import { checkKeys } from './keys.js';
import { settingBoolean, settingEnum, settingNumber, settingString, settingStringList, settingStringOrList } from './typed-values.js';
import { parseDiskSpec, type DiskSpec } from './disk-spec.js';
import { parseVifSpec, type NicSpec } from './vif-spec.js';
import { parseVncConfig, type VncConfig } from './vnc-config.js';

export const SHUTDOWN_ACTIONS = ['destroy', 'restart', 'rename-restart', 'preserve', 'coredump-destroy', 'coredump-restart', 'soft-reset'] as const;
export type ShutdownAction = (typeof SHUTDOWN_ACTIONS)[number];

export type DomainType = 'pvh' | 'hvm';

/** Hard or soft affinity: one CPULIST for every vCPU, or one per vCPU. */
export type CpuAffinity = { kind: 'all-vcpus'; cpulist: string } | { kind: 'per-vcpu'; cpulists: string[] };

export interface SchedParams {
  /** credit2 weight, 1..65535 (default 256). */
  weight: number;
  /** Cap in percent of one CPU, 0 = no cap. */
  cap: number;
  /** RTDS / legacy parameters, only when given. */
  period?: number;
  slice?: number;
  latency?: number;
  extratime?: number;
}

export interface DomainConfig {
  name: string;
  type: DomainType;
  /** What the file asked for before mapping (pv becomes pvh). */
  requestedType: 'pv' | 'pvh' | 'hvm';
  uuid?: string;
  pool?: string;
  memoryMiB: number;
  maxMemoryMiB: number;
  vcpus: number;
  maxVcpus: number;
  cpus?: CpuAffinity;
  cpusSoft?: CpuAffinity;
  sched: SchedParams;
  kernel?: string;
  ramdisk?: string;
  /** From cmdline, or built from root= and extra= (parse_cmdline). */
  cmdline?: string;
  /** HVM: bios|uefi|seabios|rombios|ovmf or a path; PVH: pvgrub32|pvgrub64. */
  firmware?: string;
  bootloader?: string;
  bootloaderArgs?: string[];
  onPoweroff: ShutdownAction;
  onReboot: ShutdownAction;
  onWatchdog: ShutdownAction;
  onCrash: ShutdownAction;
  onSoftReset: ShutdownAction;
  disks: DiskSpec[];
  nics: NicSpec[];
  /** HVM boot order, letters c (disk), d (CD-ROM), n (network); default "cd". */
  boot?: string;
  /** HVM serial ports (one string or a list in the file). */
  serial?: string[];
  /** HVM: vnc = 1 and its keys (vnc-config.ts); absent when VNC is off. */
  vnc?: VncConfig;
  /** HVM: run the device model in a stub domain (xenbox default: yes). */
  deviceModelStubdomain: boolean;
  stubdomainMemoryMiB?: number;
  maxGrantFrames?: number;
  maxMaptrackFrames?: number;
  maxGrantVersion?: number;
  maxEventChannels: number;
  driverDomain: boolean;
  /** Notes and warnings for the user: ignored keys, legacy mappings. */
  notes: string[];
}

/** libxl's default when neither memory nor maxmem is given (libxl__domain_build_info_setdefault). */
export const DEFAULT_MEMORY_MIB = 32;
export const DEFAULT_MAX_EVENT_CHANNELS = 1023;
export const DEFAULT_CPU_WEIGHT = 256;

const INT_MAX = 2 ** 31 - 1;

/** Read and parse a config file (the only I/O here). */
export function readConfigFile(path: string): ParsedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new XenError(code === 'ENOENT' ? 'ENOENT' : 'EIO', `${path}: unable to open configuration file: ${(e as Error).message}`);
  }
  return parseConfig(text, path);
}

/**
 * `xl create FILE key=value ...`: each override is parsed with the config
 * grammar (so strings need quotes: name="web1") and applied after the file,
 * as xl appends them to the file's text.  Later assignments win; `+=` appends.
 */
export function applyOverrides(config: ParsedConfig, overrides: readonly string[]): ParsedConfig {
  overrides.forEach((o, i) => {
    if (!o.includes('=')) throw new XenError('EINVAL', `command line override ${i + 1} \`${o}': expected KEY=VALUE`);
    parseInto(config, o, `command line override ${i + 1} \`${o}'`);
  });
  return config;
}

/** Xen's strncmp(buf, word, strlen(buf)): a prefix of the word (even an empty one) matches. */
function isPrefixOf(buf: string, word: string): boolean {
  return word.startsWith(buf);
}

interface TypeDecision {
  type: DomainType;
  requested: 'pv' | 'pvh' | 'hvm';
}

function decideType(get: (k: string) => ConfigSetting | undefined, notes: string[]): TypeDecision {
  let requested: 'pv' | 'pvh' | 'hvm' | undefined;
  const typeSetting = get('type');
  if (typeSetting) {
    const buf = settingString(typeSetting);
    if (isPrefixOf(buf, 'hvm')) requested = 'hvm';
    else if (isPrefixOf(buf, 'pv')) requested = 'pv';
    else if (isPrefixOf(buf, 'pvh')) requested = 'pvh';
    else throw configError(typeSetting.value.pos, `Invalid domain type ${buf} (allowed: pvh, hvm, pv)`);
  }
  const builder = get('builder');
  if (builder) {
    const buf = settingString(builder);
    let fromBuilder: 'pv' | 'hvm';
    if (isPrefixOf(buf, 'hvm')) fromBuilder = 'hvm';
    else if (isPrefixOf(buf, 'generic')) fromBuilder = 'pv';
    else throw configError(builder.value.pos, `Invalid domain type ${buf} for \`builder' (allowed: hvm, generic)`);
    if (requested !== undefined && requested !== fromBuilder) {
      throw configError(builder.pos, `Contradicting "builder" and "type" options specified (type at ${formatPos(typeSetting!.pos)})`);
    }
    requested = fromBuilder;
    notes.push(`${formatPos(builder.pos)}: note: \`builder' is deprecated (since Xen 4.10); read as type = "${fromBuilder === 'hvm' ? 'hvm' : 'pv'}"`);
  }
  if (requested === undefined) {
    notes.push('note: no `type\' given: xenbox guests default to pvh (x86 Xen would default to pv, which has no meaning on RISC-V)');
    return { type: 'pvh', requested: 'pvh' };
  }
  if (requested === 'pv') {
    notes.push('note: PV guests have no meaning on RISC-V; xenbox runs them as pvh (xenbox PV guests are PVH-style)');
    return { type: 'pvh', requested };
  }
  return { type: requested, requested };
}

/** parse_cmdline: cmdline wins over root= and extra=, which combine as "root=R E". */
function buildCmdline(get: (k: string) => ConfigSetting | undefined, notes: string[]): string | undefined {
  const cmdline = get('cmdline');
  const root = get('root');
  const extra = get('extra');
  const r = root ? settingString(root) : undefined;
  const e = extra ? settingString(extra) : undefined;
  if (cmdline) {
    if (root || extra) notes.push(`${formatPos(cmdline.pos)}: warning: ignoring root= and extra= in favour of cmdline=`);
    return settingString(cmdline);
  }
  if (r !== undefined && e !== undefined) return `root=${r} ${e}`;
  if (r !== undefined) return `root=${r}`;
  return e;
}

function affinity(s: ConfigSetting | undefined): CpuAffinity | undefined {
  if (!s) return undefined;
  const v = settingStringOrList(s);
  return Array.isArray(v) ? { kind: 'per-vcpu', cpulists: v } : { kind: 'all-vcpus', cpulist: v };
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function listItemSource(s: ConfigSetting, i: number): string {
  const v = s.value;
  const pos = v.kind === 'list' ? (v.items[i]?.pos ?? v.pos) : v.pos;
  return `${formatPos(pos)}: ${s.key}[${i}]`;
}

function parseDisks(s: ConfigSetting | undefined): DiskSpec[] {
  if (!s) return [];
  return settingStringList(s).map((spec, i) => parseDiskSpec(spec, { source: listItemSource(s, i) }));
}

function parseNics(s: ConfigSetting | undefined, notes: string[]): NicSpec[] {
  if (!s) return [];
  return settingStringList(s).map((spec, i) => {
    const source = listItemSource(s, i);
    let r;
    try {
      r = parseVifSpec(spec, source);
    } catch (e) {
      if (e instanceof XenError && !e.detail.startsWith(source)) throw new XenError(e.errno, `${source}: ${e.detail} in \`${spec}'`);
      throw e;
    }
    notes.push(...r.warnings.map((w) => `${source}: warning: ${w}`));
    // ARRAY_EXTEND_INIT: the devid is the list index unless devid= says otherwise
    return { ...r.nic, devid: r.nic.devid ?? i };
  });
}

function checkBootOrder(s: ConfigSetting): string {
  const boot = settingString(s);
  if (!/^[cdn]+$/.test(boot)) throw configError(s.value.pos, `\`boot': "${boot}" is not a boot order: use the letters c (hard disk), d (CD-ROM) and n (network), e.g. "cd"`);
  return boot;
}

/**
 * Turn a parsed config into a DomainConfig.  Checks every key first
 * (keys.ts), so unknown, unsupported and mistyped keys are errors here.
 */
export function toDomainConfig(config: ParsedConfig): DomainConfig {
  const { warnings } = checkKeys(config);
  const notes = [...warnings];
  const get = (k: string): ConfigSetting | undefined => config.settings.get(k);
  const num = (k: string, bounds?: { min?: number; max?: number }): number | undefined => {
    const s = get(k);
    return s ? settingNumber(s, bounds) : undefined;
  };
  const str = (k: string): string | undefined => {
    const s = get(k);
    return s ? settingString(s) : undefined;
  };
  const action = (k: string, dflt: ShutdownAction): ShutdownAction => {
    const s = get(k);
    return s ? settingEnum(s, SHUTDOWN_ACTIONS) : dflt;
  };

  const { type, requested } = decideType(get, notes);

  const nameSetting = get('name');
  if (!nameSetting) throw new XenError('EINVAL', `${config.source}: Domain name must be specified (add a line name = "...")`);
  const name = settingString(nameSetting);
  if (name === '' || /[/\x00-\x1f]/.test(name)) throw configError(nameSetting.value.pos, `invalid domain name "${name}": it must be non-empty, without '/' or control characters`);

  const uuidSetting = get('uuid');
  const uuid = uuidSetting ? settingString(uuidSetting) : undefined;
  if (uuidSetting && !UUID_RE.test(uuid!)) throw configError(uuidSetting.value.pos, `Failed to parse UUID: ${uuid} (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);

  // memory and maxmem in MiB; libxl: maxmem defaults to memory, memory to maxmem, both to 32 MiB
  const memory = num('memory', { min: 1 });
  const maxmem = num('maxmem', { min: 1 });
  const memoryMiB = memory ?? maxmem ?? DEFAULT_MEMORY_MIB;
  const maxMemoryMiB = maxmem ?? memoryMiB;
  if (maxMemoryMiB < memoryMiB) throw configError(get('maxmem')!.value.pos, `maxmem (${maxMemoryMiB} MiB) must not be smaller than memory (${memoryMiB} MiB)`);

  const vcpusGiven = num('vcpus', { min: 1 });
  const maxVcpusGiven = num('maxvcpus', { min: 1 });
  const vcpus = vcpusGiven ?? maxVcpusGiven ?? 1;
  const maxVcpus = maxVcpusGiven ?? vcpus;
  if (maxVcpus < vcpus) throw configError(get('maxvcpus')!.value.pos, `maxvcpus (${maxVcpus}) < vcpus (${vcpus})`);

  const sched: SchedParams = { weight: num('cpu_weight', { min: 1, max: 65535 }) ?? DEFAULT_CPU_WEIGHT, cap: num('cap', { min: 0 }) ?? 0 };
  for (const k of ['period', 'slice', 'latency', 'extratime'] as const) {
    const v = num(k, { min: 0 });
    if (v !== undefined) sched[k] = v;
  }

  let kernel = str('kernel');
  const kernelSetting = get('kernel');
  if (type === 'hvm' && kernel !== undefined && kernel.split('/').pop() === 'hvmloader') {
    notes.push(`${formatPos(kernelSetting!.pos)}: note: \`kernel = "${kernel}"' is the legacy way to name HVM firmware; ignored: xenbox HVM guests boot xenbox's own firmware`);
    kernel = undefined;
  }
  const firmware = str('firmware');
  if (type === 'pvh' && firmware !== undefined) {
    if (kernel !== undefined) throw configError(get('firmware')!.pos, 'both kernel and firmware specified');
    if (!isPrefixOf(firmware, 'pvgrub32') && !isPrefixOf(firmware, 'pvgrub64')) throw configError(get('firmware')!.value.pos, 'only pvgrub{32|64} supported as firmware options for pvh guests');
  }
  const bootloader = str('bootloader');
  const bootloaderArgsSetting = get('bootloader_args');
  const bootloaderArgs = bootloaderArgsSetting ? [settingStringOrList(bootloaderArgsSetting)].flat().flatMap((a) => (bootloaderArgsSetting.value.kind === 'list' ? [a] : a.split(/[ \t\n]+/).filter(Boolean))) : undefined;
  if (type === 'pvh' && kernel === undefined && bootloader === undefined && firmware === undefined) {
    throw new XenError('EINVAL', `${config.source}: Neither kernel nor bootloader specified (a pvh guest needs kernel = "...")`);
  }
  if (bootloader !== undefined) notes.push(`${formatPos(get('bootloader')!.pos)}: note: bootloader "${bootloader}" is recorded, but xenbox runs no bootloader: give kernel= to boot this guest`);

  const deviceModel = get('device_model');
  if (deviceModel) {
    notes.push(
      `${formatPos(deviceModel.pos)}: note: ignoring device_model directive ("${settingString(deviceModel)}"): xenbox runs its own device model` +
        (type === 'hvm' ? ', in a stub domain unless device_model_stubdomain_override = 0' : ''),
    );
  }
  const stubOverride = get('device_model_stubdomain_override');

  const hvmOnly = (k: string): void => {
    const s = get(k);
    if (s && type !== 'hvm') notes.push(`${formatPos(s.pos)}: warning: \`${k}' only applies to hvm guests; ignored for a ${type} guest`);
  };
  hvmOnly('boot');
  hvmOnly('serial');
  const bootSetting = get('boot');
  const serialSetting = get('serial');

  const dc: DomainConfig = {
    name,
    type,
    requestedType: requested,
    memoryMiB,
    maxMemoryMiB,
    vcpus,
    maxVcpus,
    sched,
    onPoweroff: action('on_poweroff', 'destroy'),
    onReboot: action('on_reboot', 'restart'),
    onWatchdog: action('on_watchdog', 'destroy'),
    onCrash: action('on_crash', 'destroy'),
    onSoftReset: action('on_soft_reset', 'soft-reset'),
    disks: parseDisks(get('disk')),
    nics: parseNics(get('vif'), notes),
    deviceModelStubdomain: stubOverride ? settingBoolean(stubOverride) : type === 'hvm',
    maxEventChannels: num('max_event_channels', { min: 1 }) ?? DEFAULT_MAX_EVENT_CHANNELS,
    driverDomain: get('driver_domain') ? settingBoolean(get('driver_domain')!) : false,
    notes,
  };
  const optional: Partial<DomainConfig> = {
    uuid,
    pool: str('pool'),
    cpus: affinity(get('cpus')),
    cpusSoft: affinity(get('cpus_soft')),
    kernel,
    ramdisk: str('ramdisk'),
    cmdline: buildCmdline(get, notes),
    firmware,
    bootloader,
    bootloaderArgs,
    boot: type === 'hvm' ? (bootSetting ? checkBootOrder(bootSetting) : 'cd') : undefined,
    serial: type === 'hvm' && serialSetting ? [settingStringOrList(serialSetting)].flat() : undefined,
    vnc: parseVncConfig(get, type, notes),
    stubdomainMemoryMiB: num('stubdomain_memory', { min: 1 }),
    maxGrantFrames: num('max_grant_frames', { min: 0, max: INT_MAX }),
    maxMaptrackFrames: num('max_maptrack_frames', { min: 0, max: INT_MAX }),
    maxGrantVersion: num('max_grant_version', { min: 1, max: 2 }),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) (dc as unknown as Record<string, unknown>)[k] = v;
  return dc;
}

/** Read FILE, apply `key=value` overrides, and build the DomainConfig: `xl create FILE key=value...`. */
export function loadDomainConfig(path: string, overrides: readonly string[] = []): DomainConfig {
  return toDomainConfig(applyOverrides(readConfigFile(path), overrides));
}

/** Parse config text (no file) into a DomainConfig; `source` names it in messages. */
export function domainConfigFromText(text: string, source: string, overrides: readonly string[] = []): DomainConfig {
  return toDomainConfig(applyOverrides(parseConfig(text, source), overrides));
}

/**
 * The DomainConfig as pretty JSON (for `xl -N create`).  NIC rates are
 * uint64 BigInts, which JSON.stringify refuses: they print as numbers when
 * exact, else as decimal strings.
 */
export function domainConfigToJson(dc: DomainConfig): string {
  return JSON.stringify(dc, (_k, v: unknown) => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v), 2);
}
