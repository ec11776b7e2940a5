/**
 * A capture of one bridge in libpcap format (abi/pcap.ts), like
 * `tcpdump -i xenbr0 -w FILE`.  Records are buffered and written at most
 * FLUSH_MS later (and at once past FLUSH_BYTES), so `tshark -r FILE` sees a
 * capture that is at most that old while netback runs.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { PCAP_SNAPLEN, XenError, encodePcapGlobalHeader, encodePcapRecordHeader } from '@xenbox/abi';
import type { FrameTap } from './bridge.js';

export const PCAP_FLUSH_MS = 100;
const FLUSH_BYTES = 256 * 1024;

export class PcapWriter implements FrameTap {
  private fd: number | null;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Start of the capture in µs since the epoch, plus a monotonic offset: timestamps never go backwards. */
  private readonly epochUs = Date.now() * 1000 - performance.now() * 1000;
  packets = 0;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'w', 0o640);
    } catch (e) {
      throw new XenError('EACCES', `cannot open capture file ${path}: ${(e as Error).message}`);
    }
    writeSync(this.fd, encodePcapGlobalHeader());
  }

  capture(frame: Uint8Array): void {
    if (this.fd === null) return;
    const incl = Math.min(frame.length, PCAP_SNAPLEN);
    this.pending.push(encodePcapRecordHeader(this.epochUs + performance.now() * 1000, incl, frame.length), incl === frame.length ? frame : frame.subarray(0, incl));
    this.pendingBytes += 16 + incl;
    this.packets++;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), PCAP_FLUSH_MS);
  }

  /** Write what is buffered (one writev-like write of the concatenation). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.fd === null || this.pending.length === 0) return;
    const buf = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    writeSync(this.fd, buf);
  }

  close(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
