import { describe, expect, it } from 'vitest';
import { diskToLibxlJson, parseDiskSpec } from '../../src/xlcfg/disk-spec.js';

/** `xl -N block-attach 0 ARGS...`: the printed text, or the error. */
function blockAttachDryRun(args: string[]): { out: string } | { error: string } {
  try {
    return { out: diskToLibxlJson(parseDiskSpec(args)) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

const json = (lines: string[]): string => `disk: {\n${lines.map((l) => `    ${l}`).join(',\n')}\n}\n\n`;

const A = json(['"pdev_path": "/dev/vg/guest-volume"', '"vdev": "hda"', '"format": "raw"', '"readwrite": 1']);
const B = json(['"pdev_path": "/root/image.iso"', '"vdev": "hdc"', '"format": "raw"', '"removable": 1', '"is_cdrom": 1']);
const C = json(['"pdev_path": "/dev/vg/guest-volume"', '"vdev": "xvdb"', '"backend": "phy"', '"format": "raw"', '"readwrite": 1']);
const D = json(['"pdev_path": ""', '"vdev": "hdc"', '"format": "empty"', '"removable": 1', '"is_cdrom": 1']);
const D2 = json(['"vdev": "hdc"', '"format": "empty"', '"removable": 1', '"is_cdrom": 1']);
const ISCSI = 'iqn.2001-05.com.equallogic:0-8a0906-23fe93404-c82797962054a96d-examplehost';
const F = json([`"pdev_path": "${ISCSI}"`, '"vdev": "xvda"', '"format": "raw"', '"script": "block-iscsi"', '"readwrite": 1']);
const G = json(['"pdev_path": "app01"', '"vdev": "hda"', '"format": "raw"', '"script": "block-drbd"', '"readwrite": 1']);
const H = json(['"pdev_path": "/some/disk/image.raw"', '"vdev": "hda"', '"format": "raw"', '"readwrite": 1', '"discard_enable": "True"']);
const I = json(['"pdev_path": "/some/disk/image.iso"', '"vdev": "hda"', '"format": "raw"', '"removable": 1', '"is_cdrom": 1', '"discard_enable": "False"']);
const J = json(['"pdev_path": "/some/disk/image.raw"', '"vdev": "hda"', '"format": "raw"', '"readwrite": 1', '"trusted": "True"']);
const K = json(['"pdev_path": "/some/disk/image.raw"', '"vdev": "hda"', '"format": "raw"', '"readwrite": 1', '"trusted": "False"']);

// tools/xl/check-xl-disk-parse, all 28 cases, in upstream order.
const UPSTREAM: Array<[number, string[], string | null]> = [
  [1, ['foo'], null],
  [2, ['/dev/vg/guest-volume,,hda'], A],
  [3, ['/dev/vg/guest-volume,raw,hda,rw'], A],
  [4, ['format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume'], A],
  [5, ['format=raw', 'vdev=hda', 'access=rw', 'target=/dev/vg/guest-volume'], A],
  [6, ['raw:/dev/vg/guest-volume,hda,w'], A],
  [7, ['/root/image.iso,,hdc,cdrom'], B],
  [8, ['/root/image.iso,,hdc,,cdrom'], B],
  [9, ['/root/image.iso,raw,hdc,devtype=cdrom'], B],
  [10, ['format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso'], B],
  [11, ['format=raw', 'vdev=hdc', 'access=ro', 'devtype=cdrom', 'target=/root/image.iso'], B],
  [12, ['raw:/root/image.iso,hdc:cdrom,ro'], B],
  [13, ['backendtype=phy,vdev=xvdb,access=w,target=/dev/vg/guest-volume'], C],
  [14, ['devtype=cdrom,,,hdc'], D],
  [15, [',,hdc:cdrom,r'], D],
  [16, [',hdc:cdrom,r'], D],
  [17, ['vdev=hdc,access=r,devtype=cdrom,target='], D],
  [18, [',empty,hdc:cdrom,r'], D],
  [19, ['vdev=hdc,access=r,devtype=cdrom,format=empty'], D2],
  [20, ['vdev=hdc,access=r,devtype=cdrom'], D2],
  [21, [`iscsi:${ISCSI},xvda,w`], F],
  [22, [`vdev=xvda,access=w,script=block-iscsi,target=${ISCSI}`], F],
  [23, ['drbd:app01,hda,w'], G],
  [24, ['discard', 'vdev=hda', 'target=/some/disk/image.raw'], H],
  [25, ['discard', 'vdev=hda', 'target=/some/disk/image.raw'], H],
  [26, ['cdrom', 'no-discard', 'vdev=hda', 'target=/some/disk/image.iso'], I],
  [27, ['trusted', 'vdev=hda', 'target=/some/disk/image.raw'], J],
  [28, ['untrusted', 'vdev=hda', 'target=/some/disk/image.raw'], K],
];

describe('disk specs: the 28 upstream vectors of check-xl-disk-parse', () => {
  it.each(UPSTREAM)('case %i: %j', (_n, args, expected) => {
    const r = blockAttachDryRun(args);
    if (expected === null) expect(r).toHaveProperty('error');
    else expect(r).toEqual({ out: expected });
  });

  it('a disk spec with only a target is refused: no vdev specified', () => {
    expect(() => parseDiskSpec('foo')).toThrow("config parsing error in disk specification: no vdev specified in `foo'");
  });
});

describe('disk specs: more forms from xl-disk-configuration(5)', () => {
  const ok: Array<[string, Record<string, unknown>]> = [
    ['file:/var/lib/xen/images/my_hvm_disk.img,xvda,w', { pdevPath: '/var/lib/xen/images/my_hvm_disk.img', vdev: 'xvda', format: 'raw', readwrite: true, isCdrom: false }],
    ['file:/var/lib/xen/iso/ubuntu-22.04.iso,hdc:cdrom,r', { pdevPath: '/var/lib/xen/iso/ubuntu-22.04.iso', vdev: 'hdc', format: 'raw', readwrite: false, isCdrom: true, removable: true }],
    ['phy:/dev/sda6,hda,w', { pdevPath: '/dev/sda6', vdev: 'hda', readwrite: true }],
    ['tap:aio:/img.raw,xvda,w', { pdevPath: '/img.raw', vdev: 'xvda' }],
    ['tap2:/img.raw,xvda,w', { pdevPath: '/img.raw', vdev: 'xvda' }],
    ['tapdisk:/img.raw,xvda,w', { pdevPath: '/img.raw' }],
    ['ioemu:/img.raw,hda,w', { pdevPath: '/img.raw', vdev: 'hda' }],
    ['qcow2:/img.qcow2,xvda,w', { pdevPath: '/img.qcow2', format: 'qcow2' }],
    ['qcow:/img.qcow,xvda,w', { format: 'qcow' }],
    ['vhd:/img.vhd,xvda,w', { format: 'vhd' }],
    ['nbd:server:1234,xvda,w', { pdevPath: 'server:1234', script: 'block-nbd' }],
    ['enbd:srv,xvda,w', { script: 'block-enbd' }],
    ['/img.qcow2,qcow2,xvda,rw', { format: 'qcow2', readwrite: true }],
    ['/img.qed,qed,xvdb', { format: 'qed', vdev: 'xvdb' }],
    ['/img,raw,xvda,ro', { readwrite: false, isCdrom: false }],
    ['/img,raw,xvda,r', { readwrite: false }],
    ['/img,raw,xvda,', { readwrite: true }],
    ['/img,,sda', { vdev: 'sda', format: 'raw' }],
    ['/img,,d0p1', { vdev: 'd0p1' }],
    ['/img,,51712', { vdev: '51712' }],
    ['/img,,xvda:disk,w', { vdev: 'xvda', isCdrom: false }],
    ['vdev=xvda,target=/path,with,commas', { pdevPath: '/path,with,commas' }],
    ['vdev=xvda, target=/has space/img', { pdevPath: '/has space/img' }],
    ['  /img,,xvda', { pdevPath: '/img' }],
    ['format=qcow2,vdev=xvda,target=/a.qcow2', { format: 'qcow2' }],
    ['format=,vdev=xvda,target=/a', { format: 'raw' }],
    ['backend=drv1,vdev=xvda,target=/a', { backendDomname: 'drv1' }],
    ['backendtype=qdisk,vdev=xvda,target=/a', { backend: 'qdisk' }],
    ['backendtype=tap,vdev=xvda,target=/a', { backend: 'tap' }],
    ['backendtype=standalone,vdev=xvda,target=/a', { backend: 'standalone' }],
    ['specification=virtio,vdev=xvda,target=/a', { specification: 'virtio' }],
    ['specification=xen,vdev=xvda,target=/a', { specification: 'xen' }],
    ['direct-io-safe,vdev=xvda,target=/a', { directIoSafe: true }],
    ['script=block-foo,vdev=xvda,target=/a', { script: 'block-foo' }],
    ['grant_usage=0,vdev=xvda,target=/a', { grantUsage: false }],
    ['grant_usage=1,vdev=xvda,target=/a', { grantUsage: true }],
    ['devtype=disk,vdev=xvda,target=/a', { isCdrom: false }],
    ['cdrom,vdev=hdc', { isCdrom: true, format: 'empty', removable: true, readwrite: false }],
    ['vdev=hdc,devtype=cdrom,target=/a.iso,', { pdevPath: '/a.iso' }],
    ['colo,colo-host=h,colo-port=9000,colo-export=e,active-disk=a,hidden-disk=h2,vdev=xvda,target=/a', { coloEnable: true, coloHost: 'h', coloPort: 9000 }],
  ];
  it.each(ok)('%s parses', (spec, fields) => {
    expect(parseDiskSpec(spec)).toMatchObject(fields);
  });

  const bad: Array<[string, string]> = [
    ['/img', 'no vdev specified'],
    ['vdev=xvda', 'no target specified (and device not removable)'],
    ['/img,vmdk,xvda', "unknown value for format: near `vmdk'"],
    ['format=vmdk,vdev=xvda,target=/a', "unknown value for format: near `vmdk'"],
    ['/img,raw,xvda,rx', "unknown value for access: near `rx'"],
    ['/img,raw,xvda,w,extra', "too many positional parameters: near `extra'"],
    ['devtype=floppy,vdev=xvda,target=/a', "unknown value for type: near `devtype=floppy,'"],
    ['backendtype=iscsi,vdev=xvda,target=/a', 'unknown value for backendtype'],
    ['specification=scsi,vdev=xvda,target=/a', 'unknown value for specification'],
    ['vdev=xvda,vdev=xvdb,target=/a', "vdev respecified: near `xvdb'"],
    ['format=raw,format=qcow2,vdev=xvda,target=/a', 'format respecified'],
    ['colour=blue,vdev=xvda,target=/a', "unknown parameter: near `colour=b'"],
    ['nfs:/srv/img,xvda,w', "unknown deprecated disk prefix: near `nfs:'"],
    ['/img,,hdc:floppy', "unknown deprecated type: near `floppy'"],
    ['colo-port=0,vdev=xvda,target=/a', 'unknown value for colo_port'],
    ['/img,,xvda,vdev=xvdb', "vdev respecified: near `xvdb'"],
    ['/img,xvda,=w', 'bad disk syntax'],
  ];
  it.each(bad)('%s is refused: %s', (spec, msg) => {
    expect(() => parseDiskSpec(spec)).toThrow(msg);
  });

  it('target= swallows the rest of the spec, commas and all', () => {
    expect(parseDiskSpec('vdev=xvda,target=/a,=,w').pdevPath).toBe('/a,=,w');
  });

  it('several argv words fill one disk, and a second target is refused', () => {
    expect(() => parseDiskSpec(['target=/a', 'target=/b', 'vdev=xvda'])).toThrow("target respecified: near `/b' in `target=/b'");
  });

  it('errors are EINVAL and name where the spec came from', () => {
    expect(() => parseDiskSpec('/img', { source: 'my.cfg:7:8: disk[0]' })).toThrow(/^EINVAL: my\.cfg:7:8: disk\[0\]: config parsing error in disk specification: no vdev specified in `\/img'$/);
  });

  it('prints the options xl prints, in IDL order, and only non-defaults', () => {
    const d = parseDiskSpec('backend=drv1,direct-io-safe,specification=virtio,trusted,grant_usage=0,vdev=xvda,target=/a');
    expect(diskToLibxlJson(d)).toBe(
      json(['"backend_domname": "drv1"', '"pdev_path": "/a"', '"vdev": "xvda"', '"format": "raw"', '"readwrite": 1', '"direct_io_safe": true', '"specification": "virtio"', '"trusted": "True"', '"grant_usage": "False"']),
    );
  });
});
