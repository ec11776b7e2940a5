/**
 * The virtio order of an HVM guest's disks (libxl/hvm-disks.ts): what
 * U-Boot's `virtio scan` numbers 0, 1, ... follows boot= (c hard disks,
 * d CD-ROMs), then disk= order; an empty CD-ROM drive gets no device.
 */
import { describe, expect, it } from 'vitest';
import { virtioDiskOrder } from '../src/libxl/hvm-disks.js';
import { parseDiskSpec } from '../src/xlcfg/disk-spec.js';

const disks = ['/i/a.img,raw,hda,rw', '/i/cd.iso,raw,hdc:cdrom,r', '/i/b.img,raw,hdb,rw', ',raw,hdd:cdrom,r'].map((s) => parseDiskSpec(s));
const order = (boot?: string) => virtioDiskOrder(disks, boot).map((d) => d.vdev);

describe('the virtio order of an HVM guest\'s disks', () => {
  it('puts hard disks first for boot = "cd" (xl\'s default), in disk= order, then the CD-ROM', () => {
    expect(order('cd')).toEqual(['hda', 'hdb', 'hdc']);
    expect(order()).toEqual(['hda', 'hdb', 'hdc']);
  });

  it('puts the CD-ROM first for boot = "dc" or "d", hard disks after it', () => {
    expect(order('dc')).toEqual(['hdc', 'hda', 'hdb']);
    expect(order('d')).toEqual(['hdc', 'hda', 'hdb']);
  });

  it('keeps disk= order for a boot order that names neither (network boot)', () => {
    expect(order('n')).toEqual(['hda', 'hdc', 'hdb']);
  });

  it('gives an empty CD-ROM drive no virtio device', () => {
    expect(order('dc')).not.toContain('hdd');
  });
});
