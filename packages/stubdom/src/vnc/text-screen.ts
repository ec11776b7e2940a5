/**
 * The guest's serial console as an 80×25 text screen: what a VT100 on the
 * UART would show.  Enough of the VT100/ECMA-48 subset for firmware output
 * (U-Boot's cli, its `cls`, its progress lines): printable ASCII, CR, LF,
 * BS, TAB (stops every 8 columns), BEL (ignored), scrolling at the bottom,
 * deferred wrap at the right margin, and the CSI sequences for cursor
 * movement and erasing (CUU/CUD/CUF/CUB/CUP/HVP, ED, EL).  Other escape
 * sequences (SGR colours, modes such as ESC[?25l, ESC 7/8) are parsed and
 * dropped, so they never show up as junk on the screen.
 *
 * Each row carries the version at which it last changed, so any number of
 * viewers can ask "what changed since version v" without the screen
 * knowing them (rfb-server.ts keeps one v per client).
 */

export const SCREEN_COLS = 80;
export const SCREEN_ROWS = 25;
const TAB_STOP = 8;
/** CSI parameters beyond this many digits are clamped (a hostile guest cannot build huge numbers). */
const MAX_PARAM = 9999;
const MAX_PARAMS = 16;

const ESC = 0x1b;

type ParseState = 'ground' | 'escape' | 'csi';

export class TextScreen {
  readonly cols: number;
  readonly rows: number;
  /** One byte per cell, row-major; a space where nothing was written. */
  readonly cells: Uint8Array;
  cursorRow = 0;
  cursorCol = 0;
  /** Incremented on every change; rowVersion[r] is the version of row r's last change. */
  version = 0;
  readonly rowVersion: Uint32Array;
  /** Lines scrolled off the top so far (screen-diff.ts turns scrolling into CopyRect). */
  scrolls = 0;
  /** Set when a character was written in the last column: the next one wraps first (VT100 deferred wrap). */
  private wrapPending = false;
  private state: ParseState = 'ground';
  private params: number[] = [];
  private paramDigits = false;
  private privateMarker = false;

  constructor(cols = SCREEN_COLS, rows = SCREEN_ROWS) {
    this.cols = cols;
    this.rows = rows;
    this.cells = new Uint8Array(cols * rows).fill(0x20);
    this.rowVersion = new Uint32Array(rows);
  }

  /** The text of row r, trailing spaces trimmed. */
  line(r: number): string {
    return String.fromCharCode(...this.cells.subarray(r * this.cols, (r + 1) * this.cols)).trimEnd();
  }

  /** The whole screen as text, one line per row (trailing blank rows kept). */
  text(): string {
    return Array.from({ length: this.rows }, (_, r) => this.line(r)).join('\n');
  }

  /** Rows changed since version `since`. */
  changedRows(since: number): number[] {
    const out: number[] = [];
    for (let r = 0; r < this.rows; r++) if (this.rowVersion[r]! > since) out.push(r);
    return out;
  }

  /** Bytes from the guest's UART. */
  write(bytes: Uint8Array | readonly number[]): void {
    for (const b of bytes) this.byte(b & 0xff);
  }

  private byte(b: number): void {
    switch (this.state) {
      case 'escape':
        return this.escape(b);
      case 'csi':
        return this.csi(b);
      default:
        return this.ground(b);
    }
  }

  private ground(b: number): void {
    switch (b) {
      case 0x0d: // CR
        this.moveTo(this.cursorRow, 0);
        return;
      case 0x0a: // LF (and VT, FF, as a VT100 treats them)
      case 0x0b:
      case 0x0c:
        this.lineFeed();
        return;
      case 0x08: // BS: back one column, never past the left margin
        this.moveTo(this.cursorRow, this.cursorCol - 1);
        return;
      case 0x09: // TAB
        this.moveTo(this.cursorRow, Math.min(this.cols - 1, (Math.floor(this.cursorCol / TAB_STOP) + 1) * TAB_STOP));
        return;
      case ESC:
        this.state = 'escape';
        return;
    }
    if (b < 0x20 || b === 0x7f) return; // other C0 controls, DEL: nothing to draw
    this.put(b);
  }

  private escape(b: number): void {
    if (b === 0x5b) {
      // '[': a control sequence follows
      this.state = 'csi';
      this.params = [];
      this.paramDigits = false;
      this.privateMarker = false;
      return;
    }
    this.state = 'ground';
    if (b === 0x63) this.reset(); // ESC c: RIS
    // Anything else (ESC 7, ESC 8, ESC =, charset selection ...) is dropped.
  }

  private csi(b: number): void {
    if (b >= 0x30 && b <= 0x39) {
      const i = Math.max(0, this.params.length - (this.paramDigits ? 1 : 0));
      if (!this.paramDigits) {
        if (this.params.length >= MAX_PARAMS) return;
        this.params.push(0);
      }
      this.paramDigits = true;
      this.params[i] = Math.min(MAX_PARAM, this.params[i]! * 10 + (b - 0x30));
      return;
    }
    if (b === 0x3b) {
      // ';' ends a parameter (an empty one is 0, i.e. the default)
      if (!this.paramDigits && this.params.length < MAX_PARAMS) this.params.push(0);
      this.paramDigits = false;
      return;
    }
    if (b >= 0x3c && b <= 0x3f) {
      this.privateMarker = true; // '?' etc.: DEC private modes, ignored
      return;
    }
    if (b >= 0x20 && b <= 0x2f) return; // intermediate bytes
    this.state = 'ground';
    if (b < 0x40 || b > 0x7e) {
      // A control byte inside a sequence aborts it; act on it as usual.
      this.ground(b);
      return;
    }
    if (!this.privateMarker) this.finalByte(String.fromCharCode(b));
  }

  private finalByte(f: string): void {
    const p = (i: number, dflt: number): number => this.params[i] || dflt;
    switch (f) {
      case 'A':
        return this.moveTo(this.cursorRow - p(0, 1), this.cursorCol);
      case 'B':
        return this.moveTo(this.cursorRow + p(0, 1), this.cursorCol);
      case 'C':
        return this.moveTo(this.cursorRow, this.cursorCol + p(0, 1));
      case 'D':
        return this.moveTo(this.cursorRow, this.cursorCol - p(0, 1));
      case 'G':
        return this.moveTo(this.cursorRow, p(0, 1) - 1);
      case 'H':
      case 'f':
        return this.moveTo(p(0, 1) - 1, p(1, 1) - 1);
      case 'J':
        return this.eraseDisplay(this.params[0] ?? 0);
      case 'K':
        return this.eraseLine(this.params[0] ?? 0);
    }
    // SGR (m), DSR (n), modes (h/l), scrolling regions (r): not modelled.
  }

  private put(b: number): void {
    if (this.wrapPending) {
      this.wrapPending = false;
      this.cursorCol = 0;
      this.lineFeed();
    }
    this.cells[this.cursorRow * this.cols + this.cursorCol] = b;
    this.touch(this.cursorRow);
    if (this.cursorCol === this.cols - 1) this.wrapPending = true;
    else this.cursorCol++;
  }

  private lineFeed(): void {
    this.wrapPending = false;
    this.touch(this.cursorRow); // the cursor leaves this row
    if (this.cursorRow < this.rows - 1) {
      this.cursorRow++;
      this.touch(this.cursorRow);
      return;
    }
    this.cells.copyWithin(0, this.cols);
    this.cells.fill(0x20, (this.rows - 1) * this.cols);
    this.scrolls++;
    for (let r = 0; r < this.rows; r++) this.touch(r);
  }

  private moveTo(row: number, col: number): void {
    this.wrapPending = false;
    const r = Math.max(0, Math.min(this.rows - 1, row));
    const c = Math.max(0, Math.min(this.cols - 1, col));
    if (r === this.cursorRow && c === this.cursorCol) return;
    this.touch(this.cursorRow);
    this.cursorRow = r;
    this.cursorCol = c;
    this.touch(r);
  }

  private eraseDisplay(mode: number): void {
    const at = this.cursorRow * this.cols + this.cursorCol;
    if (mode === 0) this.clear(at, this.cells.length);
    else if (mode === 1) this.clear(0, at + 1);
    else if (mode === 2 || mode === 3) this.clear(0, this.cells.length);
  }

  private eraseLine(mode: number): void {
    const start = this.cursorRow * this.cols;
    const at = start + this.cursorCol;
    if (mode === 0) this.clear(at, start + this.cols);
    else if (mode === 1) this.clear(start, at + 1);
    else if (mode === 2) this.clear(start, start + this.cols);
  }

  private clear(from: number, to: number): void {
    if (to <= from) return;
    this.cells.fill(0x20, from, to);
    for (let r = Math.floor(from / this.cols); r <= Math.floor((to - 1) / this.cols); r++) this.touch(r);
  }

  private reset(): void {
    this.clear(0, this.cells.length);
    this.moveTo(0, 0);
  }

  private touch(r: number): void {
    this.rowVersion[r] = ++this.version;
  }
}
