/** xenconsoled's merge of a guest's SBI console and console ring (xenconsoled/console-merge.ts). */
import { describe, expect, it } from 'vitest';
import { ConsoleMerge, HOLD_MS } from '../src/xenconsoled/console-merge.js';

const bytes = (s: string) => Buffer.from(s, 'latin1');

function merge() {
  const out: string[] = [];
  const m = new ConsoleMerge((d) => out.push(Buffer.from(d).toString('latin1')));
  return { m, text: () => out.join('') };
}

describe('merging a guest\'s two consoles', () => {
  it('holds ring output while an SBI line is open and lets it out at the line\'s end', () => {
    const { m, text } = merge();
    for (const ch of 'sbi: got line: hello th') m.push('sbi', bytes(ch));
    m.push('ring', bytes('ring: got line: hello there\n'));
    for (const ch of 'ere\n') m.push('sbi', bytes(ch));
    expect(text()).toBe('sbi: got line: hello there\nring: got line: hello there\n');
    m.dispose();
  });

  it('passes output straight through when no line is open', () => {
    const { m, text } = merge();
    m.push('ring', bytes('a\n'));
    m.push('sbi', bytes('b\n'));
    m.push('ring', bytes('c'));
    m.push('ring', bytes('d\n'));
    expect(text()).toBe('a\nb\ncd\n');
    m.dispose();
  });

  it('gives up waiting for a line that does not end, rather than stalling the other console', async () => {
    const { m, text } = merge();
    m.push('sbi', bytes('prompt> '));
    m.push('ring', bytes('ring line\n'));
    expect(text()).toBe('prompt> ');
    await new Promise((r) => setTimeout(r, HOLD_MS + 50));
    expect(text()).toBe('prompt> ring line\n');
    m.push('sbi', bytes('typed\n'));
    expect(text()).toBe('prompt> ring line\ntyped\n');
    m.dispose();
  });
});
