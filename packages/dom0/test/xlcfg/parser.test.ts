import { describe, expect, it } from 'vitest';
import { XenError } from '@xenbox/abi';
import { parseConfig, type ConfigValue } from '../../src/xlcfg/parser.js';
import { tokenize } from '../../src/xlcfg/lexer.js';

/** The settings as plain values: strings, numbers as their text, lists as arrays. */
function plain(text: string): Record<string, unknown> {
  const simplify = (v: ConfigValue): unknown => (v.kind === 'list' ? v.items.map(simplify) : v.kind === 'number' ? { number: v.text } : v.value);
  const out: Record<string, unknown> = {};
  for (const [k, s] of parseConfig(text, 't.cfg').settings) out[k] = simplify(s.value);
  return out;
}

function errorOf(text: string, source = 'my.cfg'): XenError {
  try {
    parseConfig(text, source);
  } catch (e) {
    expect(e).toBeInstanceOf(XenError);
    return e as XenError;
  }
  throw new Error('expected a parse error');
}

describe('the xl.cfg grammar', () => {
  it('reads KEY = VALUE lines with strings in either quote, numbers and comments', () => {
    expect(plain(`name = "a" # comment\nkernel='/boot/k'\nmemory = 512\n# whole-line comment\n`)).toEqual({ name: 'a', kernel: '/boot/k', memory: { number: '512' } });
  });

  it('ends statements at a newline or a semicolon, and the last line needs no newline', () => {
    expect(plain('a = 1; b = 2;c="x"')).toEqual({ a: { number: '1' }, b: { number: '2' }, c: 'x' });
  });

  it('accepts a comment on the last line without a newline, and CRLF line ends', () => {
    expect(plain('a = 1\r\nb = 2 # end')).toEqual({ a: { number: '1' }, b: { number: '2' } });
  });

  it('keeps numbers as text in decimal, 0octal and 0xhex, as Xen does', () => {
    expect(plain('a = 0x1f\nb = 017\nc = 0')).toEqual({ a: { number: '0x1f' }, b: { number: '017' }, c: { number: '0' } });
  });

  it('reads lists: nested, heterogeneous, a trailing comma, newlines and comments inside', () => {
    const text = `disk = [\n  'a', # first\n\n  "b",\n  [ 1, 'x', [] ],\n]\nempty = []\n`;
    expect(plain(text)).toEqual({ disk: ['a', 'b', [{ number: '1' }, 'x', []]], empty: [] });
  });

  it('lets a later assignment win', () => {
    expect(plain('memory = 1\nmemory = 2')).toEqual({ memory: { number: '2' } });
  });

  it('+= concatenates strings and appends lists', () => {
    expect(plain(`extra = "a"\nextra += " b"\ndisk = ['x']\ndisk += ['y', 'z']`)).toEqual({ extra: 'a b', disk: ['x', 'y', 'z'] });
  });

  it('+= with no earlier value acts as =', () => {
    expect(plain(`disk += ['y']`)).toEqual({ disk: ['y'] });
  });

  it('takes identifiers with dots, underscores and digits', () => {
    expect(plain('a.b_c9 = 1')).toEqual({ 'a.b_c9': { number: '1' } });
  });

  describe('string escapes (xlu__cfgl_dequote)', () => {
    it.each([
      [String.raw`"a\"b"`, 'a"b'],
      [String.raw`'a\'b'`, "a'b"],
      [String.raw`"\\"`, '\\'],
      [String.raw`"\a\b\f\n\r\t\v"`, '\x07\b\f\n\r\t\v'],
      [String.raw`"\x41\x7a"`, 'Az'],
      [String.raw`"\101"`, 'e'],
      [String.raw`"\65x"`, 'Ax'],
      [String.raw`"\0"`, '\0'],
      [`"it's"`, "it's"],
      [`'say "hi"'`, 'say "hi"'],
    ])('%s is %j', (src, value) => {
      expect(plain(`s = ${src}`)).toEqual({ s: value });
    });

    it('reads \\N escapes as decimal, not octal: Xen\'s quirk, kept so a file means the same', () => {
      expect(plain(String.raw`s = "\101\060"`)).toEqual({ s: 'e<' });
    });
  });

  it('records where each token is, 1-based', () => {
    const toks = tokenize('a = 1\n  bb = "x"', 'f');
    expect(toks.map((t) => [t.kind, t.pos.line, t.pos.column])).toEqual([
      ['ident', 1, 1], ['=', 1, 3], ['number', 1, 5], ['newline', 1, 6], ['ident', 2, 3], ['=', 2, 6], ['string', 2, 8], ['eof', 2, 11],
    ]);
  });
});

describe('broken configs give EINVAL errors naming file:line:column and what was expected', () => {
  it.each([
    ['name = "abc\n', "my.cfg:1:8: unterminated string: no closing \" before the end of the line"],
    ["name = 'abc", "my.cfg:1:8: unterminated string: no closing ' before the end of the file"],
    ['name = "a\\qb"', 'my.cfg:1:10: invalid character after backslash in quoted string: \\q'],
    ['name = "a\\xZZ"', 'my.cfg:1:10: invalid digit after backslash hex numerical character escape in quoted string'],
    ['name = "\\799"', 'my.cfg:1:9: numerical character escape \\799 is out of range'],
    ['name = "x"\nmemory = \nvcpus = 1', "my.cfg:2:10: expected a value (string, number or list) after '=', found the end of the line"],
    ['memory = 1.5', "my.cfg:1:11: lexical error near `.5': '.' is not allowed outside a quoted string (this looks like Python code"],
    ['memory = 1024 * 2', "my.cfg:1:15: lexical error: unexpected '*'"],
    ['memory = -1', "my.cfg:1:10: lexical error near `-1': '-' is not allowed outside a quoted string (this looks like Python"],
    ['vif = [ ("a", "b") ]', "my.cfg:1:9: lexical error near `(\"a\",': '(' is not allowed outside a quoted string (this looks like Python"],
    ['import os', "my.cfg:1:8: expected '=' or '+=' after the key `import', found a key `os'"],
    ['def f():', "my.cfg:1:5: expected '=' or '+=' after the key `def', found a key `f'"],
    ['name = hello', "my.cfg:1:8: expected a value (string, number or list) after '=', found the bare word `hello': strings must be quoted, e.g. \"hello\""],
    ['a = 0x1F', "my.cfg:1:8: lexical error: unexpected 'F'"],
    ['kernel = /boot/vmlinuz', "my.cfg:1:10: lexical error: unexpected '/' (paths and other strings must be quoted"],
    ['Name = "x"', "my.cfg:1:1: lexical error: unexpected 'N'"],
    ['= "x"', "my.cfg:1:1: expected a key name (lower case letters, digits, _ and .) at the start of a statement, found '='"],
    ['"x" = 1', 'my.cfg:1:1: expected a key name before the value'],
    ['name = "a" "b"', "my.cfg:1:12: expected the end of the line or ';' after the value of `name', found a string \"b\""],
    ["disk = [ 'a' 'b' ]", "my.cfg:1:14: expected ',' or ']' after a list item, found a string 'b'"],
    ["disk = [ 'a',\n  'b'\n", "my.cfg:1:8: unterminated list: the '[' here has no matching ']'"],
    ['disk = [ , ]', "my.cfg:1:10: expected a value (string, number or list) after '[', found ','"],
    ['disk = [ "a",, ]', "my.cfg:1:14: expected a value (string, number or list) after ',', found ','"],
    ['name = "x"\nextra = "a"\nextra += [ "b" ]', 'my.cfg:3:10: can\'t add a [list] to a "string" (assigned at my.cfg:2:9)'],
    ['disk = [ "a" ]\ndisk += "b"', "my.cfg:2:9: can't add a \"string\" to a [list] (assigned at my.cfg:1:8)"],
    ['name = "x"\x00\x01', 'my.cfg:1:11: lexical error: unexpected byte 0x00'],
    ['\ufffd\ufffdPNG', 'my.cfg:1:1: lexical error: unexpected byte 0x??'],
  ])('%j', (text, message) => {
    const e = errorOf(text);
    expect(e.errno).toBe('EINVAL');
    expect(e.detail).toContain(message);
  });

  it('binary garbage read from a file is refused at its first bad byte', () => {
    const garbage = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0xff, 0xfe]).toString('utf8');
    expect(errorOf(garbage, 'vmlinux').detail).toMatch(/^vmlinux:1:1: lexical error: unexpected byte 0x7f/);
  });
});
