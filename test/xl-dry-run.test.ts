/**
 * `xl -N`: the dry runs Xen's own parser tests drive (check-xl-disk-parse,
 * check-xl-vif-parse, check-xl-vcpupin-parse), through the real CLI, with no
 * stack running.  The full vector sets run against the parsers in
 * packages/dom0/test/xlcfg; these check the command line prints exactly that.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';

const XL_BIN = resolve(REPO, 'packages/dom0/bin/xl.js');
const xl = (...args: string[]) => {
  const r = spawnSync(process.execPath, [XL_BIN, ...args], { encoding: 'utf8', env: { ...process.env, XENBOX_RUN_DIR: '/nonexistent-run-dir' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('xl -N block-attach', () => {
  it('prints libxl_device_disk as JSON, the same for the positional, key=value and split forms', () => {
    const expected = 'disk: {\n    "pdev_path": "/dev/vg/guest-volume",\n    "vdev": "hda",\n    "format": "raw",\n    "readwrite": 1\n}\n\n';
    for (const args of [['/dev/vg/guest-volume,,hda'], ['format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume'], ['format=raw', 'vdev=hda', 'access=rw', 'target=/dev/vg/guest-volume'], ['raw:/dev/vg/guest-volume,hda,w']]) {
      const r = xl('-N', 'block-attach', '0', ...args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toBe(expected);
    }
  });

  it('exits 1 with nothing on stdout for a spec without a vdev', () => {
    const r = xl('-N', 'block-attach', '0', 'foo');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('no vdev specified');
  });

  it('without -N needs a running stack, and says so', () => {
    const r = xl('block-attach', '0', 'foo');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no hypervisor running');
  });
});

describe('xl -N network-attach', () => {
  it('turns rate= into bytes per interval as libxlu_vif.c does', () => {
    const r = xl('-N', 'network-attach', '0', 'rate=16Mb/s@50ms');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('vif: {\n    "rate_bytes_per_interval": 100000,\n    "rate_interval_usecs": 50000\n}\n\n');
  });

  it('refuses an overflowing rate with exit 1', () => {
    const r = xl('-N', 'network-attach', '0', 'rate=4294967296b/s');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
  });
});

describe('xl -N vcpu-pin and xl -N create', () => {
  it('prints the cpumap of a CPULIST', () => {
    expect(xl('-N', 'vcpu-pin', '0', 'all', '0').stdout).toBe('cpumap: 0\n');
    expect(xl('-N', 'vcpu-pin', '0', 'all', '^0').stdout).toBe('cpumap: none\n');
  });

  it('prints the parsed domain config without a running stack', () => {
    const r = xl('-N', 'create', resolve(REPO, 'examples/spin.cfg'));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'spin', type: 'pvh', memoryMiB: 16 });
  });
});
