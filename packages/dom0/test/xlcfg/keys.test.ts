import { describe, expect, it } from 'vitest';
import { XL_CFG_KEYS, checkKeys, editDistance, keyInfo, suggestKey } from '../../src/xlcfg/keys.js';
import { parseConfig } from '../../src/xlcfg/parser.js';

// The complete key set of xl.cfg(5) as parsed by xl_parse.c (reference §9.2).
const DOCUMENTED = `
name type builder pool vcpus maxvcpus cpus cpus_soft vnuma cpu_weight cap period slice latency extratime memory maxmem
on_poweroff on_reboot on_watchdog on_crash on_soft_reset kernel ramdisk cmdline root extra firmware firmware_override
bootloader bootloader_args bootloader_restrict bootloader_user pvshim pvshim_path pvshim_cmdline pvshim_extra
uuid seclabel init_seclabel max_grant_frames max_maptrack_frames max_grant_version nomigrate driver_domain device_tree
passthrough xend_suspend_evtchn_compat vmtrace_buf_kb vpmu xenstore_feature_mask xenstore_quota max_event_channels e820_host tee
disk vif vif2 vtpm p9 pvcalls vfb channel rdm usbctrl usbdev pci pci_permissive pci_msitranslate pci_seize pci_power_mgmt
gfx_passthru rdm_mem_boundary dtdev ioports iomem irqs vdispl vsnd vkb virtio
boot hdtype hap oos shadow_memory bios bios_path_override pae acpi acpi_s3 acpi_s4 acpi_laptop_slate apic nx hpet altp2m altp2mhvm
altp2m_count nestedhvm cpuid acpi_firmware smbios_firmware smbios ms_vm_genid tsc_mode localtime rtc_timeoffset vpt_align timer_mode
mmio_hole xen_platform_pci xen_platform_pci_bar_uc viridian hvm_pirq videoram stdvga vga vnc vnclisten vncdisplay vncunused vncpasswd
vncviewer keymap sdl display xauthority opengl nographic spice spicehost spiceport spicetls_port spicedisable_ticketing spicepasswd
spiceagent_mouse spicevdagent spice_clipboard_sharing spiceusbredirection spice_image_compression spice_streaming_video
serial soundhw vkb_device usb usbversion usbdevice vendor_device
device_model_version device_model_override device_model device_model_stubdomain_override device_model_stubdomain_seclabel
stubdomain_kernel stubdomain_cmdline stubdomain_ramdisk stubdomain_memory device_model_args device_model_args_pv device_model_args_hvm
dm_restrict device_model_user gic_version vuart sve llc_colors nr_spis trap_unmapped_accesses arm_sci mca_caps msr_relaxed
`.split(/\s+/).filter(Boolean);

describe('the key table', () => {
  it('classifies every documented key', () => {
    expect(DOCUMENTED.filter((k) => !keyInfo(k))).toEqual([]);
  });

  it('lists each key once, and nothing that is not documented', () => {
    const names = XL_CFG_KEYS.map((k) => k.key);
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((k) => !DOCUMENTED.includes(k))).toEqual([]);
  });

  it('says why for every key that xenbox ignores or refuses', () => {
    expect(XL_CFG_KEYS.filter((k) => k.status !== 'implemented' && !k.why)).toEqual([]);
  });

  it.each([
    ['vnc', 'implemented'], ['vncdisplay', 'implemented'], ['spice', 'ignored'], ['acpi', 'ignored'], ['apic', 'ignored'], ['hap', 'ignored'], ['device_model_version', 'ignored'],
    ['pci', 'unsupported'], ['usb', 'unsupported'], ['usbdevice', 'unsupported'], ['usbctrl', 'unsupported'], ['vtpm', 'unsupported'],
    ['p9', 'unsupported'], ['dtdev', 'unsupported'], ['iomem', 'unsupported'], ['irqs', 'unsupported'],
    ['name', 'implemented'], ['disk', 'implemented'], ['vif', 'implemented'], ['cpus', 'implemented'], ['device_model', 'implemented'],
  ])('%s is %s', (key, status) => {
    expect(keyInfo(key)?.status).toBe(status);
  });
});

describe('checking a config\'s keys', () => {
  it('warns, naming file:line, for each ignored key, and accepts implemented ones silently', () => {
    const r = checkKeys(parseConfig('name = "x"\nacpi = 1\nhap = 1\n', 'w.cfg'));
    expect(r.warnings).toEqual([
      'w.cfg:2:1: warning: `acpi\' is accepted but ignored by xenbox: an x86 platform setting with no meaning on RISC-V',
      'w.cfg:3:1: warning: `hap\' is accepted but ignored by xenbox: an x86 platform setting with no meaning on RISC-V',
    ]);
  });

  it('checks the type of ignored keys too', () => {
    expect(() => checkKeys(parseConfig('spiceport = "one"', 't.cfg'))).toThrow("t.cfg:1:13: `spiceport' must be a number, but `one' is not a valid number");
  });

  it.each([
    ['memroy', 'memory'], ['vpcus', 'vcpus'], ['on_crahs', 'on_crash'], ['kernal', 'kernel'], ['dsik', 'disk'], ['cpu_wieght', 'cpu_weight'],
  ])('suggests %s -> %s', (typo, key) => {
    expect(suggestKey(typo)).toBe(key);
  });

  it('suggests nothing for a word far from every key', () => {
    expect(suggestKey('frobnicate')).toBeUndefined();
  });

  it('measures edit distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('vpcus', 'vcpus')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });
});
