import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XenError } from '@xenbox/abi';
import { applyOverrides, domainConfigFromText, domainConfigToJson, loadDomainConfig, readConfigFile, toDomainConfig } from '../../src/xlcfg/domain-config.js';
import { checkKeys } from '../../src/xlcfg/keys.js';
import { diskToLibxlJson } from '../../src/xlcfg/disk-spec.js';
import { nicToLibxlJson } from '../../src/xlcfg/vif-spec.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

function errorOf(fn: () => unknown): XenError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(XenError);
    return e as XenError;
  }
  throw new Error('expected an error');
}

const PVH = 'name = "g"\nkernel = "/k"\n';
const cfg = (extra: string, overrides: string[] = []) => domainConfigFromText(PVH + extra, 'g.cfg', overrides);

describe('the seed configs', () => {
  it('hvm-minimal.cfg is a valid HVM config: two disks, one vif, boot cd, restart on crash and reboot', () => {
    const c = loadDomainConfig(fixture('hvm-minimal.cfg'));
    expect(c).toMatchObject({
      name: 'my_hvm_domU',
      type: 'hvm',
      requestedType: 'hvm',
      memoryMiB: 2048,
      maxMemoryMiB: 2048,
      vcpus: 2,
      maxVcpus: 2,
      boot: 'cd',
      onCrash: 'restart',
      onReboot: 'restart',
      onPoweroff: 'destroy',
      onWatchdog: 'destroy',
      onSoftReset: 'soft-reset',
      deviceModelStubdomain: true,
      maxEventChannels: 1023,
      cmdline: '',
    });
    expect(c.kernel).toBeUndefined();
    expect(c.disks.map(diskToLibxlJson)).toEqual([
      'disk: {\n    "pdev_path": "/var/lib/xen/images/my_hvm_disk.img",\n    "vdev": "xvda",\n    "format": "raw",\n    "readwrite": 1\n}\n\n',
      'disk: {\n    "pdev_path": "/var/lib/xen/iso/ubuntu-22.04.iso",\n    "vdev": "hdc",\n    "format": "raw",\n    "removable": 1,\n    "is_cdrom": 1\n}\n\n',
    ]);
    expect(c.nics).toHaveLength(1);
    expect(nicToLibxlJson(c.nics[0]!)).toBe('vif: {\n    "devid": 0,\n    "mac": "00:16:3e:aa:bb:cc",\n    "bridge": "xenbr0"\n}\n\n');
  });

  it('hvm-minimal.cfg says how its legacy and ignored keys were handled', () => {
    const notes = loadDomainConfig(fixture('hvm-minimal.cfg')).notes.join('\n');
    expect(notes).toContain("hvm-minimal.cfg:5:1: note: `builder' is deprecated (since Xen 4.10); read as type = \"hvm\"");
    expect(notes).not.toContain('`vnc');
    expect(notes).toContain('hvm-minimal.cfg:28:1: note: ignoring device_model directive ("/usr/lib/xen/bin/qemu-dm"): xenbox runs its own device model, in a stub domain');
    expect(notes).toContain('hvm-minimal.cfg:31:1: note: `kernel = "/usr/lib/xen/boot/hvmloader"\' is the legacy way to name HVM firmware; ignored');
  });

  it('pv-vm.cfg is a PV guest with kernel and ramdisk, run as pvh with a note', () => {
    const c = loadDomainConfig(fixture('pv-vm.cfg'));
    expect(c).toMatchObject({ name: 'pv-vm', type: 'pvh', requestedType: 'pvh', memoryMiB: 1024, vcpus: 2, kernel: '/boot/xen-pvkernel', ramdisk: '/boot/initrd.img' });
    expect(c.disks[0]).toMatchObject({ pdevPath: '/var/lib/xen/images/pv-vm.img', vdev: 'xvda', readwrite: true });
    expect(c.nics[0]).toMatchObject({ bridge: 'xenbr0', devid: 0 });
    expect(c.notes.join('\n')).toContain('no `type\' given: xenbox guests default to pvh');
    expect(c.boot).toBeUndefined();
  });

  it('hvm-vm.cfg has no builder line, so it is PV (despite its comment), with pygrub recorded', () => {
    const c = loadDomainConfig(fixture('hvm-vm.cfg'));
    expect(c).toMatchObject({ name: 'hvm-vm', type: 'pvh', memoryMiB: 2048, vcpus: 4, bootloader: 'pygrub' });
    expect(c.disks[0]).toMatchObject({ pdevPath: '/var/lib/xen/images/hvm-vm.img', vdev: 'hda' });
    expect(c.notes.join('\n')).toContain('bootloader "pygrub" is recorded, but xenbox runs no bootloader');
  });

  it('stubdom-hvmconfig.cfg parses and passes the key check; as a domain it lacks a name, as in Xen', () => {
    const parsed = readConfigFile(fixture('stubdom-hvmconfig.cfg'));
    expect([...parsed.settings.keys()]).toEqual(['kernel', 'vif', 'disk']);
    expect(checkKeys(parsed).warnings).toEqual([]);
    expect(errorOf(() => toDomainConfig(parsed)).detail).toContain('stubdom-hvmconfig.cfg: Domain name must be specified');
  });

  it('stubdom-hvmconfig.cfg with name="stub" on the command line: an empty vif, a cdrom and two disks', () => {
    const c = loadDomainConfig(fixture('stubdom-hvmconfig.cfg'), ['name="stub"']);
    expect(c.nics).toEqual([{ colo: {}, devid: 0 }, { colo: {}, devid: 1, ip: '10.0.1.1', mac: [0xaa, 0, 0, 0x12, 0x23, 0x34] }]);
    expect(c.disks.map((d) => [d.pdevPath, d.vdev, d.readwrite, d.isCdrom])).toEqual([
      ['/tmp/install.iso', 'hdc', false, true],
      ['/dev/sda6', 'hda', true, false],
      ['/tmp/test', 'hdb', false, false],
    ]);
  });
});

describe('DomainConfig defaults and rules (xl_parse.c, libxl)', () => {
  it('fills libxl defaults: 32 MiB, 1 vCPU, weight 256, cap 0, Xen\'s shutdown actions, 1023 event channels', () => {
    expect(cfg('type = "pvh"')).toMatchObject({
      type: 'pvh', memoryMiB: 32, maxMemoryMiB: 32, vcpus: 1, maxVcpus: 1, sched: { weight: 256, cap: 0 },
      onPoweroff: 'destroy', onReboot: 'restart', onWatchdog: 'destroy', onCrash: 'destroy', onSoftReset: 'soft-reset',
      maxEventChannels: 1023, deviceModelStubdomain: false, disks: [], nics: [], driverDomain: false,
    });
  });

  it('maxmem defaults to memory, and memory to maxmem', () => {
    expect(cfg('memory = 256')).toMatchObject({ memoryMiB: 256, maxMemoryMiB: 256 });
    expect(cfg('maxmem = 512')).toMatchObject({ memoryMiB: 512, maxMemoryMiB: 512 });
    expect(cfg('memory = 256\nmaxmem = 512')).toMatchObject({ memoryMiB: 256, maxMemoryMiB: 512 });
  });

  it('maxvcpus defaults to vcpus, and may be larger', () => {
    expect(cfg('vcpus = 2\nmaxvcpus = 4')).toMatchObject({ vcpus: 2, maxVcpus: 4 });
    expect(cfg('maxvcpus = 3')).toMatchObject({ vcpus: 3, maxVcpus: 3 });
  });

  it('reads numbers in 0octal and 0xhex, and quoted numbers, as strtol does', () => {
    expect(cfg('memory = 0x100\nvcpus = "2"\ncpu_weight = 0400')).toMatchObject({ memoryMiB: 256, vcpus: 2, sched: { weight: 256 } });
  });

  it('type: hvm, pvh; pv becomes pvh with a note; builder="hvm" is hvm; prefixes match as in xl', () => {
    expect(cfg('type = "hvm"').type).toBe('hvm');
    expect(cfg('type = "pvh"').type).toBe('pvh');
    const pv = cfg('type = "pv"');
    expect(pv).toMatchObject({ type: 'pvh', requestedType: 'pv' });
    expect(pv.notes.join()).toContain('PV guests have no meaning on RISC-V');
    expect(cfg('builder = "hvm"').type).toBe('hvm');
    expect(cfg('builder = "generic"').type).toBe('pvh');
    expect(cfg('type = "h"').type).toBe('hvm');
  });

  it('hvm defaults: boot "cd" and the device model in a stub domain', () => {
    expect(cfg('type = "hvm"')).toMatchObject({ boot: 'cd', deviceModelStubdomain: true });
    expect(cfg('type = "hvm"\ndevice_model_stubdomain_override = 0').deviceModelStubdomain).toBe(false);
  });

  it('takes cpus and cpus_soft as one CPULIST or one per vCPU', () => {
    expect(cfg('vcpus = 2\ncpus = "0-3,^1"\ncpus_soft = ["0", "nodes:1"]')).toMatchObject({
      cpus: { kind: 'all-vcpus', cpulist: '0-3,^1' },
      cpusSoft: { kind: 'per-vcpu', cpulists: ['0', 'nodes:1'] },
    });
  });

  it('builds the command line as parse_cmdline does', () => {
    expect(cfg('root = "/dev/xvda1"\nextra = "console=hvc0"').cmdline).toBe('root=/dev/xvda1 console=hvc0');
    expect(cfg('root = "/dev/xvda1"').cmdline).toBe('root=/dev/xvda1');
    expect(cfg('extra = "quiet"').cmdline).toBe('quiet');
    const c = cfg('cmdline = "a b"\nroot = "/r"');
    expect(c.cmdline).toBe('a b');
    expect(c.notes.join()).toContain('ignoring root= and extra= in favour of cmdline=');
  });

  it('takes the other implemented keys through', () => {
    expect(
      cfg('uuid = "01234567-89ab-cdef-0123-456789abcdef"\npool = "p1"\ncap = 50\nperiod = 10000\nmax_grant_frames = 64\nmax_maptrack_frames = 1024\nmax_event_channels = 4095\ndriver_domain = 1\nramdisk = "/i"\non_poweroff = "preserve"\non_watchdog = "coredump-restart"'),
    ).toMatchObject({
      uuid: '01234567-89ab-cdef-0123-456789abcdef', pool: 'p1', sched: { cap: 50, period: 10000 }, maxGrantFrames: 64, maxMaptrackFrames: 1024,
      maxEventChannels: 4095, driverDomain: true, ramdisk: '/i', onPoweroff: 'preserve', onWatchdog: 'coredump-restart',
    });
  });

  it('takes serial as a string or a list, for hvm', () => {
    expect(cfg('type = "hvm"\nserial = "pty"').serial).toEqual(['pty']);
    expect(cfg('type = "hvm"\nserial = ["pty", "file:/tmp/s"]').serial).toEqual(['pty', 'file:/tmp/s']);
  });

  it('prints as JSON, rates included', () => {
    const j = JSON.parse(domainConfigToJson(cfg('vif = [ "rate=10Mb/s" ]')));
    expect(j.nics[0]).toEqual({ colo: {}, devid: 0, rateBytesPerInterval: 62500, rateIntervalUsecs: 50000 });
  });

  it('turns pci = [] into a warning, since it asks for nothing', () => {
    expect(cfg('pci = []').notes.join()).toContain("`pci' is not supported by xenbox");
  });
});

describe('bad configs give EINVAL naming file:line:column', () => {
  it.each([
    ['memory = 1.5', "g.cfg:3:11: lexical error near `.5'"],
    ['memory = "1.5"', "g.cfg:3:10: `memory' must be a number, but `1.5' is not a valid number (only whole numbers are allowed)"],
    ['memory = 08', "g.cfg:3:10: `memory' must be a number, but `08' is not a valid number (a leading 0 makes it octal, where 8 and 9 are not digits)"],
    ['memory = [ 1 ]', "g.cfg:3:10: `memory' must be a single number, not a list"],
    ['memory = 1\nmemory += 2', "g.cfg:4:1: can't use += with numbers for parameter `memory'"],
    ['memory = 512\nmaxmem = 256', 'g.cfg:4:10: maxmem (256 MiB) must not be smaller than memory (512 MiB)'],
    ['vcpus = 4\nmaxvcpus = 2', 'g.cfg:4:12: maxvcpus (2) < vcpus (4)'],
    ['vcpus = 0', "g.cfg:3:9: `vcpus': value 0 is smaller than the minimum 1"],
    ['cpu_weight = 70000', "g.cfg:3:14: `cpu_weight': value 70000 is greater than the maximum 65535"],
    ['memroy = 512', "g.cfg:3:1: unknown key `memroy' (did you mean `memory'?): it is not an xl.cfg(5) key"],
    ['frobnicate = 1', "g.cfg:3:1: unknown key `frobnicate': it is not an xl.cfg(5) key"],
    ['pci = [ "0000:00:1f.2" ]', "g.cfg:3:1: `pci' is not supported by xenbox: xenbox has no physical devices to pass through"],
    ['usb = 1', "g.cfg:3:1: `usb' is not supported by xenbox"],
    ['usbdevice = "tablet"', "g.cfg:3:1: `usbdevice' is not supported by xenbox"],
    ['vtpm = [ "backend=vtpmmgr" ]', "g.cfg:3:1: `vtpm' is not supported by xenbox: xenbox has no vTPM backend"],
    ['p9 = [ "tag=x" ]', "g.cfg:3:1: `p9' is not supported by xenbox"],
    ['dtdev = [ "/soc/x" ]', "g.cfg:3:1: `dtdev' is not supported by xenbox"],
    ['iomem = [ "1,1" ]', "g.cfg:3:1: `iomem' is not supported by xenbox"],
    ['irqs = [ 5 ]', "g.cfg:3:1: `irqs' is not supported by xenbox"],
    ['vnc = "yes"', "g.cfg:3:7: `vnc' is a boolean and must be 0 or 1, not the string \"yes\""],
    ['disk = "/img,,xvda"', "g.cfg:3:8: `disk' is a single value but should be a list, e.g. disk = [ '...' ]"],
    ['kernel = [ "/k" ]', "g.cfg:3:10: `kernel' is a list but should be a single value (a quoted string)"],
    ['disk = [ [ "a" ] ]', "g.cfg:3:10: `disk' item 0 is a list but should be a string"],
    ['on_crash = "reboot"', "g.cfg:3:12: `on_crash': unknown value \"reboot\" (allowed: destroy, restart, rename-restart, preserve, coredump-destroy, coredump-restart, soft-reset)"],
    ['type = "xen"', 'g.cfg:3:8: Invalid domain type xen (allowed: pvh, hvm, pv)'],
    ['type = "pvh"\nbuilder = "hvm"', 'g.cfg:4:1: Contradicting "builder" and "type" options specified (type at g.cfg:3:1)'],
    ['uuid = "not-a-uuid"', 'g.cfg:3:8: Failed to parse UUID: not-a-uuid'],
    ['cpus = "0-3,fish"', "g.cfg:3:8: `cpus': invalid pcpu range: `fish'"],
    ['cpus = ["0", "^all"]', 'g.cfg:3:14: `cpus\': can\'t combine "^" and "all"'],
    ['type = "hvm"\nboot = "cdx"', "g.cfg:4:8: `boot': \"cdx\" is not a boot order"],
    ['disk = [ "/img,,xvda", "/img2" ]', "g.cfg:3:24: disk[1]: config parsing error in disk specification: no vdev specified in `/img2'"],
    ['vif = [ "bridge=xenbr0,colour=blue" ]', "g.cfg:3:9: vif[0]: unrecognized argument `colour=blue' in `bridge=xenbr0,colour=blue'"],
    ['vif = [ "rate=10ZB/s" ]', "g.cfg:3:9: vif[0]: config parsing error in vif: invalid rate in `10ZB/s'"],
    ['firmware = "pvgrub64"', 'g.cfg:3:1: both kernel and firmware specified'],
  ])('%j', (extra, message) => {
    const e = errorOf(() => cfg(extra));
    expect(e.errno).toBe('EINVAL');
    expect(e.detail).toContain(message);
  });

  it('a config without a name is refused', () => {
    expect(errorOf(() => domainConfigFromText('kernel = "/k"\n', 'n.cfg')).detail).toBe('n.cfg: Domain name must be specified (add a line name = "...")');
  });

  it('a pvh config with neither kernel nor bootloader is refused, as in xl', () => {
    expect(errorOf(() => domainConfigFromText('name = "x"\n', 'n.cfg')).detail).toContain('Neither kernel nor bootloader specified');
  });

  it('a missing file is ENOENT naming the path', () => {
    const e = errorOf(() => readConfigFile('/nonexistent/x.cfg'));
    expect(e.errno).toBe('ENOENT');
    expect(e.detail).toContain('/nonexistent/x.cfg: unable to open configuration file');
  });

  it('a binary file is refused at its first bad byte, naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xlcfg-'));
    const path = join(dir, 'garbage.cfg');
    writeFileSync(path, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3, 0xff, 0xfe, 0x0a]));
    expect(errorOf(() => loadDomainConfig(path)).detail).toMatch(/garbage\.cfg:1:1: lexical error: unexpected byte 0x7f/);
  });
});

describe('xl create FILE key=value overrides', () => {
  it('apply after the file: later assignments win', () => {
    expect(cfg('memory = 256', ['memory=512', 'vcpus=2'])).toMatchObject({ memoryMiB: 512, vcpus: 2 });
  });

  it('use the config grammar, so strings are quoted', () => {
    expect(cfg('', ['name="web1"']).name).toBe('web1');
    expect(errorOf(() => cfg('', ['name=web1'])).detail).toBe(
      "command line override 1 `name=web1':1:6: expected a value (string, number or list) after '=', found the bare word `web1': strings must be quoted, e.g. \"web1\"",
    );
  });

  it('+= appends to the file\'s list', () => {
    const c = cfg('disk = [ "/a,,xvda" ]', ['disk += [ "/b,,xvdb" ]']);
    expect(c.disks.map((d) => d.vdev)).toEqual(['xvda', 'xvdb']);
  });

  it('are checked like the file: an unknown key names the override', () => {
    expect(errorOf(() => cfg('', ['vcpu=2'])).detail).toBe("command line override 1 `vcpu=2':1:1: unknown key `vcpu' (did you mean `vcpus'?): it is not an xl.cfg(5) key");
  });

  it('an override without = is refused', () => {
    expect(errorOf(() => applyOverrides(readConfigFile(fixture('pv-vm.cfg')), ['memory'])).detail).toBe("command line override 1 `memory': expected KEY=VALUE");
  });

  it('can turn the seed HVM config into a guest with real paths', () => {
    const c = loadDomainConfig(fixture('hvm-minimal.cfg'), ['disk = [ "/tmp/a.img,,xvda,w" ]', 'memory = 64']);
    expect(c).toMatchObject({ type: 'hvm', memoryMiB: 64, disks: [{ pdevPath: '/tmp/a.img', vdev: 'xvda' }] });
  });
});
