/**
 * Every key xl.cfg(5) documents (and tools/xl/xl_parse.c reads), with what
 * xenbox does with it:
 *
 * - `implemented`: takes effect (domain-config.ts reads it);
 * - `ignored`: accepted with a warning, because it means nothing on a RISC-V
 *   stack with xenbox's own device model and firmware (VNC, ACPI, HAP, ...);
 * - `unsupported`: refused with "not supported by xenbox" (PCI and USB
 *   passthrough, vTPM, 9pfs, ...), because silently dropping a device the
 *   guest expects would be worse than not starting it.
 *
 * An unknown key is an error naming it, with a "did you mean" when a known key
 * is close.  Each key has a type, checked here for every key, ignored ones
 * included, so a typo in a value is caught even where the key does nothing.
 */
import { configError, formatPos } from './lexer.js';
import type { ConfigSetting, ParsedConfig } from './parser.js';
import { settingBoolean, settingNumber, settingString, settingStringList, settingStringOrList } from './typed-values.js';
import { validateCpuListSyntax } from './cpulist.js';

export type KeyStatus = 'implemented' | 'ignored' | 'unsupported';

export type KeyType =
  | 'string'
  | 'number'
  | 'boolean'
  /** A list of strings. */
  | 'string-list'
  /** One string or a list of strings. */
  | 'string-or-list'
  /** A number or a named value (tsc_mode = 1 or tsc_mode = "native"). */
  | 'string-or-number'
  /** A boolean or a list of strings (viridian). */
  | 'boolean-or-list'
  /** A CPULIST string, or a list of them, one per vCPU. */
  | 'cpulist'
  /** Any list, items may be lists (vnuma). */
  | 'list';

export interface KeyInfo {
  key: string;
  status: KeyStatus;
  type: KeyType;
  /** For ignored and unsupported keys: why, in a few words. */
  why?: string;
}

const NO_DISPLAY = 'xenbox has no graphical display: vnc = 1 shows an HVM guest\'s serial console as text';
const NO_X86 = 'an x86 platform setting with no meaning on RISC-V';
const NO_ARM = 'an Arm platform setting with no meaning on RISC-V';
const OWN_DM = "xenbox always runs its own device model";
const OWN_FW = "xenbox HVM guests boot xenbox's own firmware";
const NO_PASSTHROUGH = 'xenbox has no physical devices to pass through';

function keys(status: KeyStatus, type: KeyType, why: string | undefined, names: string[]): KeyInfo[] {
  return names.map((key) => (why === undefined ? { key, status, type } : { key, status, type, why }));
}

/** The complete key set of xl.cfg(5), as classified by xenbox. */
export const XL_CFG_KEYS: readonly KeyInfo[] = [
  // --- implemented: they take effect -----------------------------------
  ...keys('implemented', 'string', undefined, [
    'name', 'type', 'builder', 'pool', 'uuid', 'kernel', 'ramdisk', 'cmdline', 'root', 'extra', 'firmware', 'bootloader',
    'on_poweroff', 'on_reboot', 'on_watchdog', 'on_crash', 'on_soft_reset', 'boot', 'device_model',
  ]),
  ...keys('implemented', 'number', undefined, [
    'memory', 'maxmem', 'vcpus', 'maxvcpus', 'cpu_weight', 'cap', 'period', 'slice', 'latency', 'extratime',
    'max_grant_frames', 'max_maptrack_frames', 'max_grant_version', 'max_event_channels', 'stubdomain_memory',
  ]),
  ...keys('implemented', 'boolean', undefined, ['device_model_stubdomain_override', 'driver_domain', 'vnc', 'vncunused']),
  ...keys('implemented', 'number', undefined, ['vncdisplay']),
  ...keys('implemented', 'string', undefined, ['vnclisten', 'vncpasswd']),
  ...keys('implemented', 'cpulist', undefined, ['cpus', 'cpus_soft']),
  ...keys('implemented', 'string-list', undefined, ['disk', 'vif']),
  ...keys('implemented', 'string-or-list', undefined, ['serial', 'bootloader_args']),

  // --- ignored with a warning -------------------------------------------
  ...keys('ignored', 'boolean', NO_DISPLAY, ['sdl', 'opengl', 'nographic', 'spice', 'spicedisable_ticketing', 'spiceagent_mouse', 'spicevdagent', 'spice_clipboard_sharing', 'stdvga', 'vkb_device']),
  ...keys('ignored', 'number', NO_DISPLAY, ['vncviewer', 'spiceport', 'spicetls_port', 'spiceusbredirection', 'videoram']),
  ...keys('ignored', 'string', NO_DISPLAY, ['keymap', 'display', 'xauthority', 'spicehost', 'spicepasswd', 'spice_image_compression', 'spice_streaming_video', 'vga']),
  ...keys('ignored', 'boolean', NO_X86, [
    'hap', 'oos', 'pae', 'acpi', 'acpi_s3', 'acpi_s4', 'acpi_laptop_slate', 'apic', 'nx', 'hpet', 'altp2mhvm', 'nestedhvm',
    'localtime', 'vpt_align', 'xen_platform_pci', 'xen_platform_pci_bar_uc', 'hvm_pirq', 'e820_host', 'pvshim', 'msr_relaxed', 'xend_suspend_evtchn_compat', 'vpmu',
  ]),
  ...keys('ignored', 'number', NO_X86, ['shadow_memory', 'altp2m_count', 'rtc_timeoffset', 'mmio_hole', 'vmtrace_buf_kb']),
  ...keys('ignored', 'string', NO_X86, ['hdtype', 'ms_vm_genid', 'vendor_device', 'soundhw', 'pvshim_path', 'pvshim_cmdline', 'pvshim_extra']),
  ...keys('ignored', 'string-or-number', NO_X86, ['tsc_mode', 'timer_mode', 'altp2m']),
  ...keys('ignored', 'boolean-or-list', NO_X86, ['viridian']),
  ...keys('ignored', 'string-or-list', NO_X86, ['cpuid', 'mca_caps']),
  ...keys('ignored', 'string', OWN_FW, ['bios', 'bios_path_override', 'firmware_override', 'acpi_firmware', 'smbios_firmware']),
  ...keys('ignored', 'string-list', OWN_FW, ['smbios']),
  ...keys('ignored', 'string', OWN_DM, ['device_model_version', 'device_model_override', 'device_model_user', 'stubdomain_kernel', 'stubdomain_cmdline', 'stubdomain_ramdisk']),
  ...keys('ignored', 'string-list', OWN_DM, ['device_model_args', 'device_model_args_pv', 'device_model_args_hvm']),
  ...keys('ignored', 'boolean', OWN_DM, ['dm_restrict']),
  ...keys('ignored', 'string', 'xenbox has no XSM/FLASK security labels', ['seclabel', 'init_seclabel', 'device_model_stubdomain_seclabel']),
  ...keys('ignored', 'boolean', 'xenbox does not restrict migration per domain', ['nomigrate']),
  ...keys('ignored', 'string', 'xenbox runs no bootloader as a separate user', ['bootloader_user']),
  ...keys('ignored', 'boolean', 'xenbox runs no bootloader as a separate user', ['bootloader_restrict']),
  ...keys('ignored', 'string', NO_PASSTHROUGH, ['passthrough']),
  ...keys('ignored', 'number', 'xenbox xenstored takes no per-domain feature mask', ['xenstore_feature_mask']),
  ...keys('ignored', 'string-list', 'xenbox xenstored quotas are set stack-wide', ['xenstore_quota']),
  ...keys('ignored', 'string', NO_ARM, ['gic_version', 'vuart', 'tee']),
  ...keys('ignored', 'string-or-number', NO_ARM, ['sve']),
  ...keys('ignored', 'number', NO_ARM, ['nr_spis']),
  ...keys('ignored', 'boolean', NO_ARM, ['trap_unmapped_accesses']),
  ...keys('ignored', 'string-or-list', NO_ARM, ['llc_colors', 'arm_sci']),
  ...keys('ignored', 'string-list', 'netchannel2 is deprecated and not supported by xl', ['vif2']),

  // --- not supported: refused -------------------------------------------
  ...keys('unsupported', 'string-list', NO_PASSTHROUGH, ['pci', 'dtdev', 'ioports', 'iomem', 'irqs', 'usbctrl', 'usbdev']),
  ...keys('unsupported', 'boolean', NO_PASSTHROUGH, ['pci_permissive', 'pci_msitranslate', 'pci_seize', 'pci_power_mgmt', 'usb']),
  ...keys('unsupported', 'number', NO_PASSTHROUGH, ['usbversion', 'rdm_mem_boundary']),
  ...keys('unsupported', 'string-or-list', NO_PASSTHROUGH, ['usbdevice']),
  ...keys('unsupported', 'string-or-number', NO_PASSTHROUGH, ['gfx_passthru']),
  ...keys('unsupported', 'string', NO_PASSTHROUGH, ['rdm', 'device_tree']),
  ...keys('unsupported', 'string-list', 'xenbox has no vTPM backend', ['vtpm']),
  ...keys('unsupported', 'string-list', 'xenbox has no 9pfs backend', ['p9']),
  ...keys('unsupported', 'string-list', 'xenbox has no PV calls backend', ['pvcalls']),
  ...keys('unsupported', 'string-list', 'xenbox has no framebuffer backend', ['vfb']),
  ...keys('unsupported', 'string-list', 'xenbox has no keyboard/pointer backend', ['vkb']),
  ...keys('unsupported', 'string-list', 'xenbox has no PV display backend', ['vdispl']),
  ...keys('unsupported', 'list', 'xenbox has no PV sound backend', ['vsnd']),
  ...keys('unsupported', 'string-list', 'xenbox has no channel backend (only the console)', ['channel']),
  ...keys('unsupported', 'string-list', 'xenbox has no virtio-mmio devices', ['virtio']),
  ...keys('unsupported', 'list', 'xenbox has a single NUMA-less guest memory layout', ['vnuma']),
];

const BY_NAME = new Map(XL_CFG_KEYS.map((k) => [k.key, k]));

export function keyInfo(key: string): KeyInfo | undefined {
  return BY_NAME.get(key);
}

/** Edit distance with adjacent transpositions (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known key closest to `key`, if it is close enough to be a likely typo. */
export function suggestKey(key: string): string | undefined {
  let best: { key: string; d: number } | undefined;
  for (const k of XL_CFG_KEYS) {
    const d = editDistance(key, k.key);
    if (!best || d < best.d) best = { key: k.key, d };
  }
  const limit = Math.max(1, Math.min(3, Math.floor(key.length / 3)));
  return best && best.d <= limit ? best.key : undefined;
}

/** Values that ask for nothing: `pci = []`, `usb = 0`, `vtpm = ""`. */
function requestsNothing(s: ConfigSetting): boolean {
  const v = s.value;
  if (v.kind === 'list') return v.items.length === 0;
  if (v.kind === 'string') return v.value === '' || v.value === '0';
  return v.text === '0';
}

/** Check a setting's value against its key's type; throws naming file:line:column. */
export function checkType(s: ConfigSetting, type: KeyType): void {
  switch (type) {
    case 'string':
      settingString(s);
      return;
    case 'number':
      settingNumber(s);
      return;
    case 'boolean':
      settingBoolean(s);
      return;
    case 'string-list':
      settingStringList(s);
      return;
    case 'string-or-list':
      settingStringOrList(s);
      return;
    case 'string-or-number':
      settingString(s);
      return;
    case 'boolean-or-list':
      if (s.value.kind === 'list') settingStringList(s);
      else settingBoolean(s);
      return;
    case 'cpulist': {
      const v = s.value;
      const specs = settingStringOrList(s);
      const items = v.kind === 'list' ? v.items : [v];
      (Array.isArray(specs) ? specs : [specs]).forEach((spec, i) => {
        const problem = validateCpuListSyntax(spec);
        if (problem) throw configError(items[i]!.pos, `\`${s.key}': ${problem}`);
      });
      return;
    }
    case 'list':
      if (s.value.kind !== 'list') throw configError(s.value.pos, `\`${s.key}' is a single value but should be a list`);
      return;
  }
}

export interface KeyCheckResult {
  /** One line per accepted-but-ignored key, naming file:line. */
  warnings: string[];
}

/**
 * Check every setting: known key, supported, right type.  Throws the first
 * problem as XenError EINVAL; returns the warnings for ignored keys.
 */
export function checkKeys(config: ParsedConfig): KeyCheckResult {
  const warnings: string[] = [];
  for (const s of config.settings.values()) {
    const info = keyInfo(s.key);
    const at = formatPos(s.pos);
    if (!info) {
      const hint = suggestKey(s.key);
      throw configError(s.pos, `unknown key \`${s.key}'${hint ? ` (did you mean \`${hint}'?)` : ''}: it is not an xl.cfg(5) key`);
    }
    checkType(s, info.type);
    if (info.status === 'unsupported') {
      if (requestsNothing(s)) {
        warnings.push(`${at}: warning: \`${s.key}' is not supported by xenbox (${info.why}); ignored because it asks for nothing`);
        continue;
      }
      throw configError(s.pos, `\`${s.key}' is not supported by xenbox: ${info.why}`);
    }
    if (info.status === 'ignored') warnings.push(`${at}: warning: \`${s.key}' is accepted but ignored by xenbox: ${info.why}`);
  }
  return { warnings };
}
