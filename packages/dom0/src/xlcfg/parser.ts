/**
 * The xl.cfg grammar: Xen's tools/libs/util/libxlu_cfg_y.y.
 *
 *   file       : stmts | stmts assignment          (last line needs no newline)
 *   stmt       : assignment endstmt | endstmt
 *   assignment : IDENT '=' value | IDENT '+=' value
 *   endstmt    : NEWLINE | ';'
 *   value      : atom | '[' nlok valuelist ']'
 *   atom       : STRING | NUMBER
 *   valuelist  : (empty) | values | values ',' nlok
 *   values     : value nlok | values ',' nlok value nlok
 *   nlok       : NEWLINE*
 *
 * Storing (xlu__cfg_set_store / xlu__cfg_concat_vals in libxlu_cfg.c): a later
 * assignment of a key wins; `+=` concatenates onto a string or appends onto a
 * list assigned before, and adding a list to a string (or the reverse) is an
 * error.  Numbers are kept as text, as in Xen, so `+=` onto a number makes a
 * value that cannot be read as a number any more (see typed-values.ts).
 */
import { configError, formatPos, lexTokens, type SourcePos, type Token, type TokenKind } from './lexer.js';

export type ConfigValue =
  | { kind: 'string'; value: string; pos: SourcePos }
  | { kind: 'number'; text: string; pos: SourcePos }
  | { kind: 'list'; items: ConfigValue[]; pos: SourcePos };

export interface ConfigSetting {
  key: string;
  value: ConfigValue;
  /** Where the key of the (last) assignment is. */
  pos: SourcePos;
  /** The last assignment used `+=` (Xen's XLU_OP_ADDITION). */
  added: boolean;
}

/** A parsed config: the settings by key, in the order keys first appeared. */
export interface ParsedConfig {
  source: string;
  settings: Map<string, ConfigSetting>;
}

export function emptyConfig(source: string): ParsedConfig {
  return { source, settings: new Map() };
}

/** Parse a whole config file's text.  `source` names it in error messages. */
export function parseConfig(text: string, source: string): ParsedConfig {
  const config = emptyConfig(source);
  parseInto(config, text, source);
  return config;
}

/** Parse more config text on top of an existing config (later assignments win, `+=` appends). */
export function parseInto(config: ParsedConfig, text: string, source: string): ParsedConfig {
  const statements = new Parser(lexTokens(text, source)).file();
  for (const s of statements) storeSetting(config, s);
  return config;
}

interface Assignment {
  key: string;
  op: '=' | '+=';
  value: ConfigValue;
  pos: SourcePos;
}

/** xlu__cfg_set_store: `=` replaces, `+=` concatenates with what was there. */
export function storeSetting(config: ParsedConfig, a: Assignment): void {
  const prev = config.settings.get(a.key);
  let value = a.value;
  if (a.op === '+=' && prev) value = concatValues(prev.value, a.value);
  // Re-inserting keeps Map order = first appearance; the value is the latest.
  config.settings.set(a.key, { key: a.key, value, pos: a.pos, added: a.op === '+=' });
}

function concatValues(prev: ConfigValue, add: ConfigValue): ConfigValue {
  if (prev.kind === 'list' && add.kind === 'list') return { kind: 'list', items: [...prev.items, ...add.items], pos: add.pos };
  if (prev.kind !== 'list' && add.kind !== 'list') {
    return { kind: 'string', value: atomText(prev) + atomText(add), pos: add.pos };
  }
  const what = (v: ConfigValue): string => (v.kind === 'list' ? 'a [list]' : `a ${v.kind === 'number' ? 'number' : '"string"'}`);
  throw configError(add.pos, `can't add ${what(add)} to ${what(prev)} (assigned at ${formatPos(prev.pos)}): += needs the same kind of value on both sides`);
}

export function atomText(v: ConfigValue): string {
  if (v.kind === 'string') return v.value;
  if (v.kind === 'number') return v.text;
  throw new Error('atomText of a list');
}

const DESCRIBE: Record<TokenKind, string> = {
  ident: 'a key',
  number: 'a number',
  string: 'a string',
  newline: 'the end of the line',
  '=': "'='",
  '+=': "'+='",
  ';': "';'",
  '[': "'['",
  ']': "']'",
  ',': "','",
  eof: 'the end of the file',
};

function describeToken(t: Token): string {
  if (t.kind === 'ident' || t.kind === 'number') return `${DESCRIBE[t.kind]} \`${t.text}'`;
  if (t.kind === 'string') return `a string ${t.text.length > 30 ? t.text.slice(0, 27) + '...' : t.text}`;
  return DESCRIBE[t.kind];
}

class Parser {
  private i = 0;
  private readonly tokens: Token[] = [];
  constructor(private readonly lexer: Iterator<Token>) {}

  /** The current token, lexed only when the parser gets to it. */
  private get t(): Token {
    while (this.tokens.length <= this.i) {
      const r = this.lexer.next();
      this.tokens.push(r.done ? this.tokens[this.tokens.length - 1]! : r.value);
    }
    return this.tokens[this.i]!;
  }

  /** A method, not a property, so TypeScript does not narrow it across this.i++. */
  private kind(): TokenKind {
    return this.t.kind;
  }

  private fail(expected: string): never {
    throw configError(this.t.pos, `expected ${expected}, found ${describeToken(this.t)}`);
  }

  file(): Assignment[] {
    const out: Assignment[] = [];
    while (this.kind() !== 'eof') {
      if (this.kind() === 'newline' || this.kind() === ';') {
        this.i++;
        continue;
      }
      if (this.kind() !== 'ident') {
        this.fail(this.kind() === 'string' || this.kind() === 'number' || this.kind() === '[' ? 'a key name before the value (KEY = VALUE)' : 'a key name (lower case letters, digits, _ and .) at the start of a statement');
      }
      out.push(this.assignment());
      if (this.kind() === 'newline' || this.kind() === ';') this.i++;
      else if (this.kind() !== 'eof') this.fail(`the end of the line or ';' after the value of \`${out[out.length - 1]!.key}'`);
    }
    return out;
  }

  private assignment(): Assignment {
    const keyTok = this.t;
    this.i++;
    const opTok = this.t;
    if (opTok.kind !== '=' && opTok.kind !== '+=') this.fail(`'=' or '+=' after the key \`${keyTok.text}'`);
    this.i++;
    const value = this.value(`after '${opTok.kind}'`);
    return { key: keyTok.text, op: opTok.kind, value, pos: keyTok.pos };
  }

  private value(where: string): ConfigValue {
    const t = this.t;
    if (t.kind === 'string') {
      this.i++;
      return { kind: 'string', value: t.value, pos: t.pos };
    }
    if (t.kind === 'number') {
      this.i++;
      return { kind: 'number', text: t.text, pos: t.pos };
    }
    if (t.kind === '[') return this.list();
    if (t.kind === 'ident') {
      throw configError(t.pos, `expected a value (string, number or list) ${where}, found the bare word \`${t.text}': strings must be quoted, e.g. "${t.text}"`);
    }
    return this.fail(`a value (string, number or list) ${where}`);
  }

  private skipNewlines(): void {
    while (this.kind() === 'newline') this.i++;
  }

  private list(): ConfigValue {
    const open = this.t;
    this.i++;
    const items: ConfigValue[] = [];
    this.skipNewlines();
    while (this.kind() !== ']') {
      if (this.kind() === 'eof') throw configError(open.pos, `unterminated list: the '[' here has no matching ']'`);
      items.push(this.value(items.length === 0 ? "after '['" : "after ','"));
      this.skipNewlines();
      if (this.kind() === ',') {
        this.i++;
        this.skipNewlines();
      } else if (this.kind() !== ']') {
        if (this.kind() === 'eof') throw configError(open.pos, `unterminated list: the '[' here has no matching ']'`);
        this.fail("',' or ']' after a list item");
      }
    }
    this.i++;
    return { kind: 'list', items, pos: open.pos };
  }
}
