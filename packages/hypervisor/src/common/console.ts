/**
 * The hypervisor console (xen/drivers/char/console.c): a bounded ring of
 * lines — boot banner, domain lifecycle, guests' console_io writes — that
 * `xl dmesg` reads.  Oldest lines fall off when it is full, as in Xen's
 * conring (default 16 KiB; here counted in characters).
 */
export const CONRING_SIZE = 64 * 1024;

export class ConsoleRing {
  private lines: string[] = [];
  private chars = 0;

  constructor(private readonly size = CONRING_SIZE) {}

  /** Append text as Xen prints it: "(XEN) " for the hypervisor, "(dN) " for a domain. */
  write(from: 'xen' | number, text: string): void {
    const prefix = from === 'xen' ? '(XEN) ' : `(d${from}) `;
    for (const line of text.replace(/\n$/, '').split('\n')) this.push(prefix + line);
  }

  read(): string {
    return this.lines.map((l) => l + '\n').join('');
  }

  clear(): void {
    this.lines = [];
    this.chars = 0;
  }

  private push(line: string): void {
    this.lines.push(line);
    this.chars += line.length + 1;
    while (this.chars > this.size && this.lines.length > 1) this.chars -= this.lines.shift()!.length + 1;
  }
}
