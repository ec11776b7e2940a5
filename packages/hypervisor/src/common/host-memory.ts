/**
 * Host memory accounting (xen/common/page_alloc.c's role): the hypervisor
 * hands out at most `totalPages` pages to all domains together, so creating
 * or growing a domain beyond the host fails with ENOMEM instead of taking
 * the machine down.  `--host-mem` sets the total.
 */
import { totalmem } from 'node:os';
import { XEN_PAGE_SIZE, XenError } from '@xenbox/abi';

/** Default: half the machine's memory — the rest is Node, ZeroMQ and the other processes. */
export function defaultHostMemBytes(): number {
  return Math.floor(totalmem() / 2);
}

export class HostMemory {
  readonly totalPages: number;
  private used = 0;

  constructor(bytes = defaultHostMemBytes()) {
    this.totalPages = Math.floor(bytes / XEN_PAGE_SIZE);
  }

  get freePages(): number {
    return this.totalPages - this.used;
  }

  get usedPages(): number {
    return this.used;
  }

  /** Take `n` pages or fail with ENOMEM taking none. */
  claim(n: number, who: string): void {
    if (n > this.freePages) throw new XenError('ENOMEM', `${who}: host memory exhausted (${n} pages asked, ${this.freePages} of ${this.totalPages} free)`);
    this.used += n;
  }

  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/** Parse a --host-mem value: bytes, or with a K/M/G suffix (powers of 1024). */
export function parseMemSize(text: string): number {
  const m = /^(\d+)([kKmMgG]?)[bB]?$/.exec(text.trim());
  if (!m) throw new XenError('EINVAL', `'${text}' is not a memory size (e.g. 4G, 512M)`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * unit;
}
