/**
 * The xl.cfg lexer: Xen's tools/libs/util/libxlu_cfg_l.l, rule for rule.
 *
 *   IDENT    [a-z][._0-9a-z]*
 *   NUMBER   [0-9][0-9a-fx]*        (validated later, when a key wants a number:
 *                                    Xen keeps the text and strtol()s it on use)
 *   STRING   '...' or "..."          with the escapes of xlu__cfgl_dequote()
 *   OP_ADD   +=
 *   = ; [ ] ,  and NEWLINE (a `#` comment runs to the end of its line)
 *   [ \t]    skipped
 *
 * Anything else is a lexical error; `+ - . ( ) :` outside a string set Xen's
 * "likely python" flag, so the message says the file looks like Python.
 *
 * Deliberate differences from Xen, all on the side of accepting real files:
 * a `\r` before a newline is skipped (CRLF files), and a comment on the last
 * line needs no final newline.
 */
import { XenError } from '@xenbox/abi';

export type TokenKind = 'ident' | 'number' | 'string' | 'newline' | '=' | '+=' | ';' | '[' | ']' | ',' | 'eof';

/** Where something is in a config source: 1-based line and column. */
export interface SourcePos {
  source: string;
  line: number;
  column: number;
}

export interface Token {
  kind: TokenKind;
  /** The raw text (for strings: with the quotes). */
  text: string;
  /** For strings: the dequoted value; for idents and numbers: the text. */
  value: string;
  pos: SourcePos;
}

export function formatPos(p: SourcePos): string {
  return `${p.source}:${p.line}:${p.column}`;
}

/** A config error: EINVAL with `file:line:column: message`. */
export function configError(pos: SourcePos, message: string): XenError {
  return new XenError('EINVAL', `${formatPos(pos)}: ${message}`);
}

const PYTHON_CHARS = new Set(['+', '-', '.', '(', ')', ':']);
const SINGLE_CHAR_TOKENS: Record<string, TokenKind> = { '=': '=', ';': ';', '[': '[', ']': ']', ',': ',' };

const isIdentStart = (c: string): boolean => c >= 'a' && c <= 'z';
const isIdentChar = (c: string): boolean => isIdentStart(c) || (c >= '0' && c <= '9') || c === '_' || c === '.';
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isNumberChar = (c: string): boolean => isDigit(c) || (c >= 'a' && c <= 'f') || c === 'x';

/** Show a character in an error message so that control bytes stay readable. */
export function describeChar(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  if (code < 0x20 || code === 0x7f || c === '\ufffd') return `byte 0x${code === 0xfffd ? '??' : code.toString(16).padStart(2, '0')}`;
  return `'${c}'`;
}

export function tokenize(text: string, source: string): Token[] {
  return [...lexTokens(text, source)];
}

/**
 * Tokens on demand, as flex hands them to bison: the parser reports a syntax
 * error before the lexer reaches a bad character later on the same line.
 */
export function lexTokens(text: string, source: string): Iterator<Token> & Iterable<Token> {
  return new Lexer(text, source).run();
}

class Lexer {
  private i = 0;
  private line = 1;
  private lineStart = 0;
  private readonly tokens: Token[] = [];

  constructor(private readonly text: string, private readonly source: string) {}

  *run(): Generator<Token> {
    while (this.i < this.text.length) {
      this.next();
      yield* this.tokens.splice(0);
    }
    yield { kind: 'eof', text: '', value: '', pos: this.here() };
  }

  private here(at = this.i): SourcePos {
    return { source: this.source, line: this.line, column: at - this.lineStart + 1 };
  }

  private push(kind: TokenKind, start: number, value?: string): void {
    const text = this.text.slice(start, this.i);
    this.tokens.push({ kind, text, value: value ?? text, pos: this.here(start) });
  }

  private newline(start: number): void {
    this.push('newline', start, '\n');
    this.line++;
    this.lineStart = this.i;
  }

  private next(): void {
    const start = this.i;
    const c = this.text[this.i]!;
    if (c === ' ' || c === '\t' || (c === '\r' && this.text[this.i + 1] === '\n')) {
      this.i++;
    } else if (c === '\n') {
      this.i++;
      this.newline(start);
    } else if (c === '#') {
      while (this.i < this.text.length && this.text[this.i] !== '\n') this.i++;
      if (this.i < this.text.length) {
        this.i++;
        this.newline(start);
      }
    } else if (isIdentStart(c)) {
      while (this.i < this.text.length && isIdentChar(this.text[this.i]!)) this.i++;
      this.push('ident', start);
    } else if (isDigit(c)) {
      while (this.i < this.text.length && isNumberChar(this.text[this.i]!)) this.i++;
      this.push('number', start);
    } else if (c === '"' || c === "'") {
      this.quotedString(c);
    } else if (c === '+' && this.text[this.i + 1] === '=') {
      this.i += 2;
      this.push('+=', start);
    } else if (SINGLE_CHAR_TOKENS[c]) {
      this.i++;
      this.push(SINGLE_CHAR_TOKENS[c]!, start);
    } else {
      throw this.lexicalError(start);
    }
  }

  /** Xen's lexerr state: the bad character and the rest of its word are quoted. */
  private lexicalError(start: number): XenError {
    const c = this.text[start]!;
    let end = start + 1;
    while (end < this.text.length && !' \t\n'.includes(this.text[end]!)) end++;
    const near = this.text.slice(start, Math.min(end, start + 40));
    if (PYTHON_CHARS.has(c)) {
      return configError(
        this.here(start),
        `lexical error near \`${near}': ${describeChar(c)} is not allowed outside a quoted string ` +
          '(this looks like Python code; xl.cfg is not Python: quote strings, write numbers as whole decimal, 0octal or 0xhex numbers; ' +
          'see https://wiki.xen.org/wiki/PythonInXlConfig)',
      );
    }
    const hint = c === '/' || c === '~' ? ' (paths and other strings must be quoted: "/like/this")' : " (expected a key, a value, '=', '+=', '[', ']', ',', ';' or a '#' comment)";
    return configError(this.here(start), `lexical error: unexpected ${describeChar(c)}${hint}`);
  }

  private quotedString(quote: string): void {
    const start = this.i;
    this.i++;
    let value = '';
    for (;;) {
      if (this.i >= this.text.length || this.text[this.i] === '\n') {
        throw configError(this.here(start), `unterminated string: no closing ${quote} before the end of the ${this.i >= this.text.length ? 'file' : 'line'}`);
      }
      const c = this.text[this.i]!;
      if (c === quote) {
        this.i++;
        break;
      }
      if (c === '\\') {
        value += this.escape();
      } else {
        value += c;
        this.i++;
      }
    }
    this.push('string', start, value);
  }

  /**
   * One backslash escape (xlu__cfgl_dequote in libxlu_cfg.c).  `\N..` starts
   * with an octal digit and, as documented, takes up to three digits; Xen's
   * code reads those digits in base 10, and xenbox keeps that quirk so the
   * same file means the same string: "\101" is character 101 ('e'), not 'A'.
   */
  private escape(): string {
    const at = this.i;
    const nc = this.text[this.i + 1];
    if (nc === undefined || nc === '\n') throw configError(this.here(at), 'unterminated string: backslash at the end of the line');
    this.i += 2;
    const simple: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
    if (simple[nc] !== undefined) return simple[nc]!;
    if (nc === 'x') {
      const hex = this.text.slice(this.i, this.i + 2);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
        throw configError(this.here(at), `invalid digit after backslash hex numerical character escape in quoted string: \\x needs two hex digits, got \`\\x${hex.replace(/\n.*/, '')}'`);
      }
      this.i += 2;
      return String.fromCharCode(parseInt(hex, 16));
    }
    if (nc >= '0' && nc <= '7') {
      let digits = nc;
      while (digits.length < 3 && isDigit(this.text[this.i] ?? '')) digits += this.text[this.i++];
      const code = parseInt(digits, 10);
      if (code > 255) throw configError(this.here(at), `numerical character escape \\${digits} is out of range (xl reads \\N escapes as decimal, 0-255)`);
      return String.fromCharCode(code);
    }
    throw configError(this.here(at), `invalid character after backslash in quoted string: \\${describeChar(nc).replace(/^'|'$/g, '')} (allowed: \\" \\' \\\\ \\a \\b \\f \\n \\r \\t \\v \\xHH \\NNN)`);
  }
}
