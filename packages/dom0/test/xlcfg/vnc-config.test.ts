import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { domainConfigFromText, loadDomainConfig } from '../../src/xlcfg/domain-config.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const hvm = (lines: string): ReturnType<typeof domainConfigFromText> => domainConfigFromText(`name = "g"\ntype = "hvm"\n${lines}\n`, 'g.cfg');

describe('xl.cfg VNC keys (xl_parse.c parse_top_level_vnc_options, libxl defaults)', () => {
  it("the seed config's vnc = 1, vnclisten = \"0.0.0.0\", vncdisplay = 1 reach the device model, vncunused on by default", () => {
    expect(loadDomainConfig(fixture('hvm-minimal.cfg')).vnc).toEqual({ listen: '0.0.0.0', display: 1, findUnused: true });
  });

  it('is off unless vnc = 1 (xenbox opens no port nobody asked for)', () => {
    expect(hvm('').vnc).toBeUndefined();
    expect(hvm('vnc = 0\nvncdisplay = 3').vnc).toBeUndefined();
  });

  it('takes vncunused = 0, a password, and "" as no password', () => {
    expect(hvm('vnc = 1\nvncunused = 0\nvncpasswd = "s3cret"').vnc).toEqual({ findUnused: false, passwd: 's3cret' });
    expect(hvm('vnc = 1\nvncpasswd = ""').vnc).toEqual({ findUnused: true });
  });

  it('accepts the display in vnclisten, and refuses it together with vncdisplay as libxl_dm.c does', () => {
    expect(hvm('vnc = 1\nvnclisten = "127.0.0.1:4"').vnc).toEqual({ listen: '127.0.0.1:4', findUnused: true });
    expect(() => hvm('vnc = 1\nvnclisten = "127.0.0.1:4"\nvncdisplay = 2')).toThrow('g.cfg:4:13: vncdisplay set, vnclisten contains display');
  });

  it('refuses a display past TCP port 65535 and a mistyped value, naming the place', () => {
    expect(() => hvm('vnc = 1\nvncdisplay = 60000')).toThrow(/g\.cfg:4:14: .*vncdisplay/);
    expect(() => hvm('vnc = 1\nvncunused = "yes"')).toThrow("g.cfg:4:13: `vncunused' is a boolean");
  });

  it('warns that the keys do nothing for a PVH guest', () => {
    const c = domainConfigFromText('name = "p"\nkernel = "/k"\nvnc = 1\nvncdisplay = 2\n', 'p.cfg');
    expect(c.vnc).toBeUndefined();
    expect(c.notes).toContain("p.cfg:3:1: warning: `vnc' only applies to hvm guests (a PV guest's vfb is not supported); ignored for a pvh guest");
  });
});
