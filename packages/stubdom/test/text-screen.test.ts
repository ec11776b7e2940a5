import { describe, expect, it } from 'vitest';
import { SCREEN_COLS, SCREEN_ROWS, TextScreen } from '@xenbox/stubdom';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

function screenWith(s: string): TextScreen {
  const t = new TextScreen();
  t.write(bytes(s));
  return t;
}

describe('the 80x25 text screen of the serial console', () => {
  it('starts blank, 80 columns by 25 rows, cursor home', () => {
    const t = new TextScreen();
    expect([t.cols, t.rows]).toEqual([SCREEN_COLS, SCREEN_ROWS]);
    expect(t.text()).toBe('\n'.repeat(24));
    expect([t.cursorRow, t.cursorCol]).toEqual([0, 0]);
  });

  it("shows U-Boot's banner and prompt with CR LF line ends, the cursor after the prompt", () => {
    const t = screenWith('\r\n\r\nU-Boot 2023.01+dfsg-2 (Jan 2023)\r\n\r\nHit any key to stop autoboot:  2 \b\b\b 0 \r\n=> ');
    expect(t.line(2)).toBe('U-Boot 2023.01+dfsg-2 (Jan 2023)');
    expect(t.line(4)).toBe('Hit any key to stop autoboot:  0');
    expect(t.line(5)).toBe('=>');
    expect([t.cursorRow, t.cursorCol]).toEqual([5, 3]);
  });

  it('moves back with BS without erasing, and never past the left margin', () => {
    const t = screenWith('abc\b\bX\b\b\b\bY');
    expect(t.line(0)).toBe('YXc');
    expect(t.cursorCol).toBe(1);
  });

  it('moves to the next multiple of 8 on TAB, and stops at the last column', () => {
    const t = screenWith('ab\tc\t\td');
    expect(t.line(0)).toBe('ab      c               d');
    const u = screenWith(' '.repeat(77) + '\t\tZ');
    expect(u.line(0)).toBe(' '.repeat(79) + 'Z');
  });

  it('wraps a long line at column 80 only when the 81st character arrives (deferred wrap)', () => {
    const t = screenWith('x'.repeat(80));
    expect([t.cursorRow, t.cursorCol]).toEqual([0, 79]);
    t.write(bytes('\r\n'));
    expect(t.line(1)).toBe('');
    t.write(bytes('y'.repeat(81)));
    expect(t.line(1)).toBe('y'.repeat(80));
    expect(t.line(2)).toBe('y');
  });

  it('scrolls up when a line feed reaches the bottom, the top line dropping off', () => {
    const t = new TextScreen();
    for (let i = 0; i < 30; i++) t.write(bytes(`line ${i}\r\n`));
    expect(t.line(0)).toBe('line 6');
    expect(t.line(23)).toBe('line 29');
    expect(t.line(24)).toBe('');
    expect(t.cursorRow).toBe(24);
  });

  it("clears with U-Boot's `cls` (ESC[2J ESC[1;1H) and erases to the end of line with ESC[K", () => {
    const t = screenWith('old text\r\nmore\x1b[2J\x1b[1;1Hnew');
    expect(t.text().trim()).toBe('new');
    t.write(bytes('\r\nabcdef\x1b[3D\x1b[K'));
    expect(t.line(1)).toBe('abc');
    t.write(bytes('\x1b[2K'));
    expect(t.line(1)).toBe('');
  });

  it('follows cursor movement sequences and clamps them to the screen', () => {
    const t = screenWith('\x1b[10;20Ha\x1b[2Ab\x1b[5Cc\x1b[99;999Hz\x1b[999Ay');
    expect(t.line(9)).toBe(' '.repeat(19) + 'a');
    expect(t.line(7)).toBe(' '.repeat(20) + 'b' + ' '.repeat(5) + 'c');
    expect(t.line(24)).toBe(' '.repeat(79) + 'z');
    expect(t.line(0)).toBe(' '.repeat(79) + 'y');
  });

  it('drops colour, mode and other escape sequences instead of printing them', () => {
    const t = screenWith('\x1b[0;1;32mgreen\x1b[0m \x1b[?25lhidden\x1b[?25h \x1b7\x1b8ok\x07');
    expect(t.line(0)).toBe('green hidden ok');
  });

  it('survives hostile output: huge or endless parameters, stray controls, bytes above 0x7f', () => {
    const t = new TextScreen();
    t.write(bytes('\x1b[' + '9'.repeat(10_000) + 'A'));
    t.write(bytes('\x1b[' + '1;'.repeat(10_000) + 'H'));
    t.write(Uint8Array.from({ length: 4096 }, (_, i) => i & 0xff));
    t.write(bytes('\x1bc')); // RIS
    t.write(bytes('after'));
    expect(t.line(0)).toBe('after');
    expect(t.text().split('\n')).toHaveLength(25);
  });

  it('marks the rows that changed, so a viewer can ask what changed since it last looked', () => {
    const t = new TextScreen();
    const v0 = t.version;
    t.write(bytes('\x1b[5;1Hfive'));
    expect(t.changedRows(v0)).toEqual([0, 4]); // the cursor left row 0 and wrote row 4
    const v1 = t.version;
    expect(t.changedRows(v1)).toEqual([]);
    for (let i = 0; i < 25; i++) t.write(bytes('\n'));
    expect(t.changedRows(v1)).toHaveLength(25); // scrolling changes every row
  });
});
