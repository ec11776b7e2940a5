/**
 * Network interface specs, xl-network-configuration(5), parsed as
 * tools/xl/xl_parse.c parse_nic_config() and the rate grammar of
 * tools/libs/util/libxlu_vif.c xlu_vif_parse_rate().
 *
 * A spec in a config file is split on commas (strtok: empty pieces vanish,
 * leading spaces are stripped); `xl network-attach` passes each argv word
 * whole.  Every setting is optional; libxl fills the defaults when the device
 * is added (bridge xenbr0, a random 00:16:3e MAC, ...), see nicDefaults().
 */
import { XenError } from '@xenbox/abi';
import { yajlPretty } from './disk-spec.js';

export type NicType = 'vif' | 'vif_ioemu';

/** libxl_device_nic as the parser fills it; absent = libxl's default. */
export interface NicSpec {
  /** The list index in a config (ARRAY_EXTEND_INIT), or devid=. */
  devid?: number;
  backendDomname?: string;
  mtu?: number;
  vlan?: string;
  model?: string;
  /** Six octets, or absent (libxl then picks 00:16:3e + 3 random octets). */
  mac?: number[];
  ip?: string;
  bridge?: string;
  ifname?: string;
  script?: string;
  nictype?: NicType;
  rateBytesPerInterval?: bigint;
  rateIntervalUsecs?: number;
  gatewaydev?: string;
  /** COLO settings (coloft_forwarddev and colo_*), by libxl field name. */
  colo: Record<string, string>;
  trusted?: boolean;
}

export interface NicParseResult {
  nic: NicSpec;
  /** Xen's non-fatal messages (deprecated netdev=, ignored accel=). */
  warnings: string[];
}

const COLO_KEYS = [
  'colo_sock_mirror_id', 'colo_sock_mirror_ip', 'colo_sock_mirror_port',
  'colo_sock_compare_pri_in_id', 'colo_sock_compare_pri_in_ip', 'colo_sock_compare_pri_in_port',
  'colo_sock_compare_sec_in_id', 'colo_sock_compare_sec_in_ip', 'colo_sock_compare_sec_in_port',
  'colo_sock_compare_notify_id', 'colo_sock_compare_notify_ip', 'colo_sock_compare_notify_port',
  'colo_sock_redirector0_id', 'colo_sock_redirector0_ip', 'colo_sock_redirector0_port',
  'colo_sock_redirector1_id', 'colo_sock_redirector1_ip', 'colo_sock_redirector1_port',
  'colo_sock_redirector2_id', 'colo_sock_redirector2_ip', 'colo_sock_redirector2_port',
  'colo_filter_mirror_queue', 'colo_filter_mirror_outdev',
  'colo_filter_redirector0_queue', 'colo_filter_redirector0_indev', 'colo_filter_redirector0_outdev',
  'colo_filter_redirector1_queue', 'colo_filter_redirector1_indev', 'colo_filter_redirector1_outdev',
  'colo_compare_pri_in', 'colo_compare_sec_in', 'colo_compare_out', 'colo_compare_notify_dev',
  'colo_sock_sec_redirector0_id', 'colo_sock_sec_redirector0_ip', 'colo_sock_sec_redirector0_port',
  'colo_sock_sec_redirector1_id', 'colo_sock_sec_redirector1_ip', 'colo_sock_sec_redirector1_port',
  'colo_filter_sec_redirector0_queue', 'colo_filter_sec_redirector0_indev', 'colo_filter_sec_redirector0_outdev',
  'colo_filter_sec_redirector1_queue', 'colo_filter_sec_redirector1_indev', 'colo_filter_sec_redirector1_outdev',
  'colo_filter_sec_rewriter0_queue', 'colo_checkpoint_host', 'colo_checkpoint_port',
] as const;

const UINT32_MAX = 0xffff_ffffn;
const UINT64_MAX = 0xffff_ffff_ffff_ffffn;

function vifError(source: string, msg: string, what: string): XenError {
  return new XenError('EINVAL', `${source}: config parsing error in vif: ${msg} in \`${what}'`);
}

/**
 * strtoull(s, &end, 0) on text that starts with digits (the regexes ensure
 * that): a leading 0 means octal, so "09" stops after the 0.
 */
function strtoullBase0Digits(s: string): { value: bigint; rest: string } {
  if (s.startsWith('0')) {
    const m = /^0[0-7]*/.exec(s)![0];
    return { value: m.length > 1 ? BigInt('0o' + m.slice(1)) : 0n, rest: s.slice(m.length) };
  }
  const m = /^[0-9]+/.exec(s)![0];
  return { value: BigInt(m), rest: s.slice(m.length) };
}

/** vif_parse_rate_bytes_per_sec: `^[0-9]+[GMK]?[Bb]/s$`, decimal multipliers, b = bits. */
function parseBytesPerSec(source: string, text: string): bigint {
  if (!/^[0-9]+[GMK]?[Bb]\/s$/.test(text)) throw vifError(source, 'invalid rate', text);
  const { value, rest } = strtoullBase0Digits(text);
  if (value === 0n || value > UINT32_MAX) throw vifError(source, 'rate overflow', text);
  let bytes = value;
  if (rest[0] === 'G') bytes *= 1_000_000_000n;
  else if (rest[0] === 'M') bytes *= 1_000_000n;
  else if (rest[0] === 'K') bytes *= 1000n;
  if (rest[0] === 'b' || rest[1] === 'b') bytes /= 8n;
  return bytes;
}

/** vif_parse_rate_interval_usecs: `^[0-9]+[mu]?s?$`; no unit or `s` = seconds. */
function parseIntervalUsecs(source: string, text: string): bigint {
  if (!/^[0-9]+[mu]?s?$/.test(text)) throw vifError(source, 'invalid replenishment interval', text);
  const { value, rest } = strtoullBase0Digits(text);
  if (value === 0n || value > UINT32_MAX) throw vifError(source, 'replenishment interval overflow', text);
  let usecs = value;
  if (rest[0] === 's' || rest === '') usecs *= 1_000_000n;
  else if (rest[0] === 'm') usecs *= 1000n;
  if (usecs > UINT32_MAX) throw vifError(source, 'replenishment interval overflow', text);
  return usecs;
}

/**
 * The rate grammar `<N>[GMK]?(B|b)/s[@<N>[m|u]?s]`, default interval 50 ms.
 * Returns bytes per interval and the interval in microseconds, as libxl
 * stores them.
 */
export function parseVifRate(rate: string, source = 'command line'): { bytesPerInterval: bigint; intervalUsecs: number } {
  const at = rate.indexOf('@');
  const bytesPart = at < 0 ? rate : rate.slice(0, at);
  if (bytesPart === '') throw vifError(source, 'no rate specified', rate);
  const bytesPerSec = parseBytesPerSec(source, bytesPart);
  const interval = at < 0 ? 50_000n : parseIntervalUsecs(source, rate.slice(at + 1));
  if (bytesPerSec > UINT64_MAX / interval) throw vifError(source, 'rate overflow', rate);
  return { bytesPerInterval: (bytesPerSec * interval) / 1_000_000n, intervalUsecs: Number(interval) };
}

/**
 * The MAC as parse_nic_config reads it: six octets, each strtoul(.., 16) of
 * at most 255, separated by any one character.
 */
function parseMac(text: string): number[] | undefined {
  const octets: number[] = [];
  let rest = text;
  for (let i = 0; i < 6; i++) {
    const m = /^[ \t]*\+?(?:0[xX])?([0-9a-fA-F]+)/.exec(rest);
    if (!m) return undefined;
    const v = parseInt(m[1]!, 16);
    if (v > 255) return undefined;
    octets.push(v);
    rest = rest.slice(m[0].length);
    if (i < 5) {
      // xl steps over one separator character; a MAC that ends early is refused
      if (rest === '') return undefined;
      rest = rest.slice(1);
    }
  }
  return octets;
}

/** parse_ulong: a decimal number. */
function parseUlong(text: string, key: string): number {
  if (!/^[ \t]*\+?[0-9]+/.test(text)) throw new XenError('EINVAL', `xl: failed to convert "${text}" to number (in ${key}=)`);
  const n = Number.parseInt(text, 10);
  if (!Number.isSafeInteger(n) || n > 0xffff_ffff) throw new XenError('EINVAL', `xl: failed to convert "${text}" to number (in ${key}=)`);
  return n;
}

function emptyNic(): NicSpec {
  return { colo: {} };
}

/** MATCH_OPTION: `key=` at the start of the token. */
function option(token: string, key: string): string | undefined {
  return token.startsWith(key + '=') ? token.slice(key.length + 1) : undefined;
}

/**
 * Apply one `key=value` (or flag) token to a NIC, as parse_nic_config().
 * Throws XenError EINVAL on a bad value or an unrecognized argument.
 */
export function applyNicToken(nic: NicSpec, token: string, warnings: string[], source = 'command line'): void {
  let v: string | undefined;
  if ((v = option(token, 'type')) !== undefined) {
    if (v === 'vif') nic.nictype = 'vif';
    else if (v === 'ioemu') nic.nictype = 'vif_ioemu';
    else throw new XenError('EINVAL', `Invalid parameter \`type'. (got "${v}"; allowed: vif, ioemu)`);
  } else if ((v = option(token, 'mac')) !== undefined) {
    const mac = parseMac(v);
    if (!mac) throw new XenError('EINVAL', `Invalid parameter \`mac'. (got "${v}"; expected six hex octets like 00:16:3e:aa:bb:cc)`);
    nic.mac = mac;
  } else if ((v = option(token, 'bridge')) !== undefined) nic.bridge = v;
  else if ((v = option(token, 'netdev')) !== undefined) {
    warnings.push('the netdev parameter is deprecated, please use gatewaydev instead');
    nic.gatewaydev = v;
  } else if ((v = option(token, 'gatewaydev')) !== undefined) nic.gatewaydev = v;
  else if ((v = option(token, 'ip')) !== undefined) nic.ip = v;
  else if ((v = option(token, 'script')) !== undefined) nic.script = v;
  else if ((v = option(token, 'backend')) !== undefined) nic.backendDomname = v;
  else if ((v = option(token, 'vifname')) !== undefined) nic.ifname = v;
  else if ((v = option(token, 'model')) !== undefined) nic.model = v;
  else if ((v = option(token, 'rate')) !== undefined) {
    const r = parseVifRate(v, source);
    nic.rateBytesPerInterval = r.bytesPerInterval;
    nic.rateIntervalUsecs = r.intervalUsecs;
  } else if ((v = option(token, 'forwarddev')) !== undefined) nic.colo['coloft_forwarddev'] = v;
  else if (COLO_KEYS.some((k) => (v = option(token, k)) !== undefined)) nic.colo[token.slice(0, token.indexOf('='))] = v!;
  else if ((v = option(token, 'accel')) !== undefined) warnings.push('the accel parameter for vifs is currently not supported');
  else if ((v = option(token, 'devid')) !== undefined) nic.devid = parseUlong(v, 'devid');
  else if ((v = option(token, 'mtu')) !== undefined) nic.mtu = parseUlong(v, 'mtu');
  else if ((v = option(token, 'vlan')) !== undefined) nic.vlan = v;
  else if (token === 'trusted') nic.trusted = true;
  else if (token === 'untrusted') nic.trusted = false;
  else throw new XenError('EINVAL', `unrecognized argument \`${token}'`);
}

/** `xl network-attach DOM TOKEN...`: each argv word is one setting, not split on commas. */
export function parseNicArgs(tokens: readonly string[], source = 'command line'): NicParseResult {
  const nic = emptyNic();
  const warnings: string[] = [];
  for (const t of tokens) applyNicToken(nic, t, warnings, source);
  return { nic, warnings };
}

/** A `vif = [ '...' ]` item: comma-separated settings (empty pieces skipped, leading spaces stripped). */
export function parseVifSpec(spec: string, source = 'command line'): NicParseResult {
  const tokens = spec
    .split(',')
    .filter((t) => t !== '')
    .map((t) => t.replace(/^ +/, ''));
  return parseNicArgs(tokens, source);
}

export function formatMac(mac: readonly number[]): string {
  return mac.map((o) => o.toString(16).padStart(2, '0')).join(':');
}

/**
 * `vif: {json}` as `xl -N network-attach` prints it: libxl_device_nic in IDL
 * order (libxl_types.idl), non-default fields only; exactly xl's stdout,
 * ending with a blank line.
 */
export function nicToLibxlJson(n: NicSpec): string {
  // [key, JSON text]; uint64 rates are printed from BigInt so they stay exact
  const fields: Array<[string, string]> = [];
  const put = (k: string, v: unknown): void => {
    if (v !== undefined) fields.push([k, typeof v === 'bigint' ? v.toString() : JSON.stringify(v)]);
  };
  put('backend_domname', n.backendDomname);
  put('devid', n.devid);
  put('mtu', n.mtu || undefined);
  put('vlan', n.vlan);
  put('model', n.model);
  put('mac', n.mac && n.mac.some((o) => o !== 0) ? formatMac(n.mac) : undefined);
  put('ip', n.ip);
  put('bridge', n.bridge);
  put('ifname', n.ifname);
  put('script', n.script);
  put('nictype', n.nictype);
  put('rate_bytes_per_interval', n.rateBytesPerInterval || undefined);
  put('rate_interval_usecs', n.rateIntervalUsecs || undefined);
  put('gatewaydev', n.gatewaydev);
  for (const k of ['coloft_forwarddev', ...COLO_KEYS]) put(k, n.colo[k]);
  put('trusted', n.trusted === undefined ? undefined : n.trusted ? 'True' : 'False');
  const body = fields.map(([k, v]) => `    ${JSON.stringify(k)}: ${v}`).join(',\n');
  return `vif: ${fields.length ? `{\n${body}\n}` : yajlPretty([])}\n\n`;
}

export interface NicDefaultsContext {
  domid: number;
  devid: number;
  hvm: boolean;
  /** Three random octets for the MAC; libxl uses random bytes. */
  randomMacTail: [number, number, number];
}

/** What libxl fills in when the NIC is added (libxl_nic.c libxl__device_nic_setdefault). */
export function nicDefaults(n: NicSpec, ctx: NicDefaultsContext): Required<Pick<NicSpec, 'mac' | 'bridge' | 'mtu' | 'nictype' | 'script' | 'ifname' | 'model'>> & NicSpec {
  return {
    ...n,
    devid: n.devid ?? ctx.devid,
    mac: n.mac ?? [0x00, 0x16, 0x3e, ...ctx.randomMacTail],
    bridge: n.bridge ?? 'xenbr0',
    mtu: n.mtu ?? 1500,
    nictype: n.nictype ?? (ctx.hvm ? 'vif_ioemu' : 'vif'),
    script: n.script ?? 'vif-bridge',
    ifname: n.ifname ?? `vif${ctx.domid}.${n.devid ?? ctx.devid}`,
    model: n.model ?? 'rtl8139',
  };
}
