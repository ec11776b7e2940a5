/**
 * How an xl command fails: xl prints its own message (no "xl:" prefix) and
 * returns EXIT_FAILURE.  A hypervisor error is shown first the way libxl logs
 * it ("libxl: error: ..."), then xl's own line, as real xl prints both.
 */
import { XenError } from '@xenbox/abi';

export class XlFailure extends Error {
  constructor(
    message: string,
    /** Exit status (EXIT_FAILURE unless xl itself returns something else). */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Run a hypervisor call; on XenError fail with libxl's error line and xl's `xlMessage`. */
export async function libxl<T>(xlMessage: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof XenError) throw new XlFailure(`libxl: error: ${e.detail}\n${xlMessage}`);
    throw e;
  }
}

/** strtol() as xl uses it for option values, but refusing text that is not a number at all. */
export function intOption(what: string, text: string): number {
  const m = /^\s*([+-]?\d+)/.exec(text);
  if (!m) throw new XlFailure(`Invalid ${what} '${text}': not a number.`);
  return Number(m[1]);
}
