/**
 * xenconsoled's state: per guest, the recent console output (so a late
 * `xl console` sees what was printed), the log file, and who is attached.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { GUEST_CONSOLE_BACKLOG, type DomId, type RunDirLayout } from '@xenbox/abi';

interface GuestConsole {
  name: string;
  backlog: Buffer;
  attached: Set<Socket>;
}

export class ConsoleHub {
  private readonly guests = new Map<DomId, GuestConsole>();

  constructor(private readonly layout: RunDirLayout) {
    mkdirSync(layout.consoleDir, { recursive: true, mode: 0o700 });
  }

  /** Output from a guest: keep the tail, append to its log, copy to attached terminals. */
  output(domid: DomId, name: string, data: Uint8Array): void {
    const g = this.guest(domid, name);
    const all = Buffer.concat([g.backlog, data]);
    g.backlog = all.length > GUEST_CONSOLE_BACKLOG ? all.subarray(all.length - GUEST_CONSOLE_BACKLOG) : all;
    appendFileSync(this.layout.consoleLog(name), data);
    for (const s of g.attached) s.write(data);
  }

  attach(domid: DomId, name: string, sock: Socket): Buffer {
    const g = this.guest(domid, name);
    g.attached.add(sock);
    sock.once('close', () => g.attached.delete(sock));
    return g.backlog;
  }

  /** A guest is gone: detach its terminals. */
  forget(domid: DomId): void {
    const g = this.guests.get(domid);
    if (!g) return;
    for (const s of g.attached) s.end();
    this.guests.delete(domid);
  }

  private guest(domid: DomId, name: string): GuestConsole {
    let g = this.guests.get(domid);
    if (!g) this.guests.set(domid, (g = { name, backlog: Buffer.alloc(0), attached: new Set() }));
    return g;
  }
}
