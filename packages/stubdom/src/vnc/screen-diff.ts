/**
 * What a VNC client must be sent to show the screen as it is now, given what
 * it was last sent: the rows whose text or cursor differ, and — when the
 * screen scrolled in between and the client takes CopyRect (RFC 6143
 * §7.7.2) — one CopyRect that scrolls the client's own pixels, after which
 * only the rows the copy does not get right go as Raw.  A serial console
 * mostly scrolls, so this turns a 1 MB full frame per scroll into a few
 * bytes plus one new row.
 *
 * The comparison is of content (the cells and the cursor the client was
 * sent, kept per client), not of change counters, so a row that changed and
 * changed back is not sent again, and a copy is used only when most rows it
 * moves really match.
 */
import type { TextScreen } from './text-screen.js';

/** The text a client was sent (per row `unknown` when it was sent something else, e.g. a partial rectangle). */
export interface SentScreen {
  cells: Uint8Array;
  cursorRow: number;
  cursorCol: number;
  scrolls: number;
  unknown: Uint8Array;
}

export interface UpdatePlan {
  /** Scroll the client's pixels up by `by` rows (rows by..rows-1 to 0..rows-1-by). */
  copy: { by: number } | null;
  /** Rows to send as Raw after the copy, ascending. */
  rawRows: number[];
}

export function sentScreen(screen: TextScreen): SentScreen {
  return { cells: screen.cells.slice(), cursorRow: screen.cursorRow, cursorCol: screen.cursorCol, scrolls: screen.scrolls, unknown: new Uint8Array(screen.rows) };
}

export function planUpdate(screen: TextScreen, sent: SentScreen | null, copyRect: boolean): UpdatePlan {
  const rows = screen.rows;
  if (!sent) return { copy: null, rawRows: Array.from({ length: rows }, (_, r) => r) };
  const by = screen.scrolls - sent.scrolls;
  let copy: { by: number } | null = null;
  if (copyRect && by > 0 && by < rows) {
    let matches = 0;
    for (let r = 0; r < rows - by; r++) if (!sent.unknown[r + by] && rowEqual(screen, r, sent, r + by)) matches++;
    if (matches * 2 >= rows - by) copy = { by };
  }
  const rawRows: number[] = [];
  for (let r = 0; r < rows; r++) {
    // What the client shows in row r: its old row r, or the row the copy moved there.
    const from = copy && r < rows - copy.by ? r + copy.by : r;
    const hadCursor = from === sent.cursorRow;
    const hasCursor = r === screen.cursorRow;
    const cursorOk = hadCursor === hasCursor && (!hasCursor || sent.cursorCol === screen.cursorCol);
    if (sent.unknown[from] || !cursorOk || !rowEqual(screen, r, sent, from)) rawRows.push(r);
  }
  return { copy, rawRows };
}

function rowEqual(screen: TextScreen, r: number, sent: SentScreen, s: number): boolean {
  const c = screen.cols;
  const a = screen.cells;
  const b = sent.cells;
  for (let i = 0; i < c; i++) if (a[r * c + i] !== b[s * c + i]) return false;
  return true;
}
