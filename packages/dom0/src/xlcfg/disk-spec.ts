/**
 * Disk specs, xl-disk-configuration(5), parsed exactly as Xen does: this is
 * tools/libs/util/libxlu_disk_l.l (a flex scanner) and libxlu_disk.c
 * xlu_disk_parse(), rule for rule.
 *
 * The scanner is emulated faithfully: at each point every rule is tried, the
 * longest match wins (trailing context, the part after flex's `/`, counts for
 * the length but is not consumed), and a tie goes to the earlier rule.  That
 * is what makes `file:/path,...` a prefix (its `/.*` context reaches the end
 * of the string) and `cdrom` a flag rather than a positional word.
 *
 * Several specs (the argv of `xl block-attach`) fill one disk, with one shared
 * state, as in xlu_disk_parse().
 */
import { XenError } from '@xenbox/abi';

export type DiskFormat = 'qcow' | 'qcow2' | 'vhd' | 'raw' | 'empty' | 'qed';
export type DiskBackend = 'phy' | 'tap' | 'qdisk' | 'standalone';
export type DiskSpecification = 'xen' | 'virtio';

/** libxl_device_disk as the parser fills it; absent = libxl's default. */
export interface DiskSpec {
  backendDomname?: string;
  pdevPath?: string;
  vdev: string;
  backend?: DiskBackend;
  format: DiskFormat;
  script?: string;
  removable: boolean;
  readwrite: boolean;
  isCdrom: boolean;
  directIoSafe: boolean;
  discardEnable?: boolean;
  specification?: DiskSpecification;
  coloEnable?: boolean;
  coloHost?: string;
  coloPort?: number;
  coloExport?: string;
  activeDisk?: string;
  hiddenDisk?: string;
  trusted?: boolean;
  grantUsage?: boolean;
}

/** The parser's working copy: everything optional until post-processing. */
interface DiskDraft extends Partial<DiskSpec> {
  readwrite: boolean;
  isCdrom: boolean;
  removable: boolean;
  directIoSafe: boolean;
}

interface ParseState {
  disk: DiskDraft;
  hadDeprecatedPrefix: boolean;
  accessSet: boolean;
  /** Error messages so far (Xen keeps scanning after most errors, reporting each). */
  errors: string[];
  source: string;
  spec: string;
}

type Action = (st: ParseState, yytext: string) => 'stop' | void;

interface Rule {
  /** The whole pattern, leading part plus trailing context, as a sticky regex. */
  re: RegExp;
  /** Length of the leading part (yytext) when the rule has trailing context. */
  lead?: (match: string) => number;
  action: Action;
}

const fromEquals = (t: string): string => t.slice(t.indexOf('=') + 1);
const strip = (t: string, delim: string): string => (t.endsWith(delim) ? t.slice(0, -1) : t);

function err(st: ParseState, erroneous: string | undefined, message: string): void {
  st.errors.push(
    `${st.source}: config parsing error in disk specification: ${message}${erroneous !== undefined ? `: near \`${erroneous}'` : ''} in \`${st.spec}'`,
  );
}

/** SAVESTRING: a string may be given once (overwriting an empty one is fine). */
function saveString(st: ParseState, what: string, field: 'pdevPath' | 'vdev' | 'script' | 'backendDomname' | 'coloHost' | 'coloExport' | 'activeDisk' | 'hiddenDisk', value: string): void {
  const cur = st.disk[field];
  if (cur) {
    err(st, value, `${what} respecified`);
    return;
  }
  st.disk[field] = value;
}

/** DSET: an enum may be set again only to the same value. */
function setEnum<K extends 'format' | 'backend' | 'specification'>(st: ParseState, field: K, value: NonNullable<DiskDraft[K]>, text: string): void {
  const cur = st.disk[field];
  if (cur !== undefined && cur !== value) err(st, text, `${field} respecified`);
  else st.disk[field] = value;
}

function setAccess(st: ParseState, str: string): void {
  if (str === 'r' || str === 'ro') st.disk.readwrite = false;
  else if (str === 'rw' || str === 'w' || str === '') st.disk.readwrite = true;
  else err(st, str, 'unknown value for access');
}

const FORMATS: Record<string, DiskFormat> = { '': 'raw', raw: 'raw', qcow: 'qcow', qcow2: 'qcow2', vhd: 'vhd', empty: 'empty', qed: 'qed' };
function setFormat(st: ParseState, str: string): void {
  const f = FORMATS[str];
  if (f) setEnum(st, 'format', f, str);
  else err(st, str, 'unknown value for format');
}

function setBackendType(st: ParseState, str: string): void {
  if (str === 'phy' || str === 'tap' || str === 'qdisk' || str === 'standalone') setEnum(st, 'backend', str, str);
  else err(st, str, 'unknown value for backendtype');
}

function setSpecification(st: ParseState, str: string): void {
  if (str === 'xen' || str === 'virtio') setEnum(st, 'specification', str, str);
  else err(st, str, 'unknown value for specification');
}

/** atoi(); 0 (or junk) is refused, as in setcoloport(). */
function setColoPort(st: ParseState, str: string): void {
  const port = Number.parseInt(str.trim(), 10);
  if (port) st.disk.coloPort = port;
  else err(st, str, 'unknown value for colo_port');
}

/** `<vdev>:<devtype>` in the vdev position (deprecated); returns false if there is no colon. */
function vdevAndDevtype(st: ParseState, str: string): boolean {
  const colon = str.lastIndexOf(':');
  if (colon < 0) return false;
  saveString(st, 'vdev', 'vdev', str.slice(0, colon));
  const type = str.slice(colon + 1);
  if (type === 'cdrom') st.disk.isCdrom = true;
  else if (type === 'disk') st.disk.isCdrom = false;
  else err(st, type, 'unknown deprecated type');
  return true;
}

/** A bare word fills the next unset positional parameter: target, format, vdev, access. */
function positional(st: ParseState, yytext: string): 'stop' | void {
  const text = strip(yytext, ',');
  const d = st.disk;
  if (st.errors.length > 0) {
    // previous errors may just lead to subsequent ones
  } else if (d.pdevPath === undefined) {
    saveString(st, 'target', 'pdevPath', text);
  } else if (!st.hadDeprecatedPrefix && d.format === undefined) {
    if (d.pdevPath === '' && vdevAndDevtype(st, text)) d.format = 'empty';
    else setFormat(st, text);
  } else if (d.vdev === undefined) {
    if (!vdevAndDevtype(st, text)) saveString(st, 'vdev', 'vdev', text);
  } else if (!st.accessSet) {
    st.accessSet = true;
    setAccess(st, text);
  } else {
    err(st, text, 'too many positional parameters');
    return 'stop';
  }
}

const keyValue = (key: string, set: (st: ParseState, value: string, text: string) => void): Rule => ({
  re: new RegExp(`${key}=[^,]*,?`, 'y'),
  action: (st, t) => {
    const text = strip(t, ',');
    set(st, fromEquals(text), text);
  },
});
const flag = (word: string, set: (d: DiskDraft) => void): Rule => ({ re: new RegExp(`${word},?`, 'y'), action: (st) => set(st.disk) });
/** A `prefix:` rule whose trailing context `/.*` makes it match to the end of the string. */
const prefixRule = (re: string, action: Action): Rule => ({
  re: new RegExp(`(?:${re}):[^\\n]*`, 'y'),
  lead: (m) => m.indexOf(':') + 1,
  action,
});
const ignoredPrefix: Action = (st) => {
  st.hadDeprecatedPrefix = true;
};

/** The rules of libxlu_disk_l.l, in order. */
const RULES: Rule[] = [
  // whitespace before parameters: [ \t\n]+/([^ \t\n].*)?
  { re: /[ \t\n]+(?:[^ \t\n][^\n]*)?/y, lead: (m) => /^[ \t\n]+/.exec(m)![0].length, action: () => {} },
  keyValue('format', (st, v) => setFormat(st, v)),
  flag('cdrom', (d) => (d.isCdrom = true)),
  flag('devtype=cdrom', (d) => (d.isCdrom = true)),
  flag('devtype=disk', (d) => (d.isCdrom = false)),
  { re: /devtype=[^,]*,?/y, action: (st, t) => err(st, t, 'unknown value for type') },
  keyValue('access', (st, v) => setAccess(st, v)),
  keyValue('backend', (st, v) => saveString(st, 'backend', 'backendDomname', v)),
  keyValue('backendtype', (st, v) => setBackendType(st, v)),
  keyValue('specification', (st, v) => setSpecification(st, v)),
  keyValue('vdev', (st, v) => saveString(st, 'vdev', 'vdev', v)),
  keyValue('script', (st, v) => saveString(st, 'script', 'script', v)),
  flag('direct-io-safe', (d) => (d.directIoSafe = true)),
  flag('discard', (d) => (d.discardEnable = true)),
  flag('no-discard', (d) => (d.discardEnable = false)),
  // COLO settings: "should be considered unstable" (libxlu_disk_l.l)
  flag('colo', (d) => (d.coloEnable = true)),
  flag('no-colo', (d) => (d.coloEnable = false)),
  keyValue('colo-host', (st, v) => saveString(st, 'colo-host', 'coloHost', v)),
  keyValue('colo-port', (st, v) => setColoPort(st, v)),
  keyValue('colo-export', (st, v) => saveString(st, 'colo-export', 'coloExport', v)),
  keyValue('active-disk', (st, v) => saveString(st, 'active-disk', 'activeDisk', v)),
  keyValue('hidden-disk', (st, v) => saveString(st, 'hidden-disk', 'hiddenDisk', v)),
  flag('trusted', (d) => (d.trusted = true)),
  flag('untrusted', (d) => (d.trusted = false)),
  flag('grant_usage=1', (d) => (d.grantUsage = true)),
  flag('grant_usage=0', (d) => (d.grantUsage = false)),
  // the target magic parameter, eats the rest of the string
  { re: /target=[^\n]*/y, action: (st, t) => saveString(st, 'target', 'pdevPath', fromEquals(strip(t, ','))) },
  // unknown parameters (note: [^,] is a single character, as upstream)
  { re: /[a-z][-a-z0-9]*=[^,],?/y, action: (st, t) => err(st, t, 'unknown parameter') },
  // deprecated prefixes
  prefixRule('raw|qcow2?|vhd', (st, t) => {
    st.hadDeprecatedPrefix = true;
    setFormat(st, strip(t, ':'));
  }),
  prefixRule('iscsi|e?nbd|drbd', (st, t) => {
    st.hadDeprecatedPrefix = true;
    saveString(st, 'script', 'script', `block-${strip(t, ':')}`);
  }),
  prefixRule('tapdisk', ignoredPrefix),
  prefixRule('tap2?', ignoredPrefix),
  prefixRule('aio', ignoredPrefix),
  prefixRule('ioemu', ignoredPrefix),
  prefixRule('file', ignoredPrefix),
  prefixRule('phy', ignoredPrefix),
  {
    re: /[a-z][a-z0-9]*:(?:[^a-z0-9\n][^\n]*)?/y,
    lead: (m) => m.indexOf(':') + 1,
    action: (st, t) => {
      err(st, t, 'unknown deprecated disk prefix');
      return 'stop';
    },
  },
  // positional parameters
  { re: /[^=,]*,|[^=,]+,?/y, action: positional },
];

/** Run the scanner over one spec string. */
function scan(st: ParseState, spec: string): void {
  st.spec = spec;
  let i = 0;
  while (i < spec.length) {
    let best: { rule: Rule; len: number; text: string } | undefined;
    for (const rule of RULES) {
      rule.re.lastIndex = i;
      const m = rule.re.exec(spec);
      if (!m || m[0].length === 0) continue;
      if (!best || m[0].length > best.len) best = { rule, len: m[0].length, text: m[0] };
    }
    if (!best) {
      // `.` then <LEXERR>.*: the rest of the line is reported
      err(st, spec.slice(i).split('\n')[0], 'bad disk syntax');
      return;
    }
    const consumed = best.rule.lead ? best.rule.lead(best.text) : best.len;
    const yytext = best.text.slice(0, consumed);
    i += consumed;
    if (best.rule.action(st, yytext) === 'stop') return;
  }
}

export interface DiskParseOptions {
  /** Names the spec's origin in messages ("command line", "my.cfg:12"). */
  source?: string;
}

/**
 * Parse one disk from one or more spec strings (xlu_disk_parse).  Throws
 * XenError EINVAL with Xen's message, e.g. "config parsing error in disk
 * specification: no vdev specified in `foo'".
 */
export function parseDiskSpec(specs: string | readonly string[], opts: DiskParseOptions = {}): DiskSpec {
  const list = typeof specs === 'string' ? [specs] : specs;
  const st: ParseState = {
    disk: { readwrite: true, isCdrom: false, removable: false, directIoSafe: false },
    hadDeprecatedPrefix: false,
    accessSet: false,
    errors: [],
    source: opts.source ?? 'command line',
    spec: list[0] ?? '',
  };
  for (const spec of list) {
    scan(st, spec);
    if (st.errors.length) throw new XenError('EINVAL', st.errors.join('\n'));
  }
  const d = st.disk;
  if (d.format === undefined) d.format = 'raw';
  if (d.isCdrom) {
    d.removable = true;
    d.readwrite = false;
    if (!d.pdevPath) d.format = 'empty';
  }
  if (d.vdev === undefined) err(st, undefined, 'no vdev specified');
  else if (d.pdevPath === undefined && !d.removable) err(st, undefined, 'no target specified (and device not removable)');
  if (st.errors.length) throw new XenError('EINVAL', st.errors.join('\n'));
  return d as DiskSpec;
}

/**
 * `disk: {json}` as `xl -N block-attach` prints it: libxl_device_disk in IDL
 * field order, only fields that differ from their default, yajl's pretty
 * printing (4 spaces), defbools as "True"/"False".  The text is exactly
 * xl's stdout: printf("disk: %s\n") of yajl output that ends in a newline,
 * so it ends with a blank line.
 */
export function diskToLibxlJson(d: DiskSpec): string {
  const fields: Array<[string, unknown]> = [];
  const put = (k: string, v: unknown, isDefault: boolean): void => {
    if (!isDefault) fields.push([k, v]);
  };
  const defbool = (b: boolean | undefined): string | undefined => (b === undefined ? undefined : b ? 'True' : 'False');
  put('backend_domname', d.backendDomname, d.backendDomname === undefined);
  put('pdev_path', d.pdevPath, d.pdevPath === undefined);
  put('vdev', d.vdev, d.vdev === undefined);
  put('backend', d.backend, d.backend === undefined);
  put('format', d.format, d.format === undefined);
  put('script', d.script, d.script === undefined);
  put('removable', d.removable ? 1 : 0, !d.removable);
  put('readwrite', d.readwrite ? 1 : 0, !d.readwrite);
  put('is_cdrom', d.isCdrom ? 1 : 0, !d.isCdrom);
  put('direct_io_safe', true, !d.directIoSafe);
  put('discard_enable', defbool(d.discardEnable), d.discardEnable === undefined);
  put('specification', d.specification, d.specification === undefined);
  put('colo_enable', defbool(d.coloEnable), d.coloEnable === undefined);
  put('colo_host', d.coloHost, d.coloHost === undefined);
  put('colo_port', d.coloPort, !d.coloPort);
  put('colo_export', d.coloExport, d.coloExport === undefined);
  put('active_disk', d.activeDisk, d.activeDisk === undefined);
  put('hidden_disk', d.hiddenDisk, d.hiddenDisk === undefined);
  put('trusted', defbool(d.trusted), d.trusted === undefined);
  put('grant_usage', defbool(d.grantUsage), d.grantUsage === undefined);
  return `disk: ${yajlPretty(fields)}\n\n`;
}

/** A flat JSON object as yajl_gen with yajl_gen_beautify prints it. */
export function yajlPretty(fields: ReadonlyArray<[string, unknown]>): string {
  if (fields.length === 0) return '{\n}';
  return `{\n${fields.map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(',\n')}\n}`;
}
