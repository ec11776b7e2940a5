/**
 * Cutting a byte stream into xenstore messages (core.c handle_input()):
 * a 16-byte header, then `len` payload bytes.  A header announcing more
 * than XENSTORE_PAYLOAD_MAX is a protocol error and the caller drops the
 * connection, as C xenstored does ("Client tried to feed us ...").
 */
import { XENSTORE_PAYLOAD_MAX, XSD_SOCKMSG_SIZE, decodeXsHeader, type XsHeader } from '@xenbox/abi';

export interface XsMessage {
  hdr: XsHeader;
  payload: Buffer;
}

export class ProtocolError extends Error {}

export class XsStreamReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Add bytes; returns every message now complete. Throws ProtocolError on an over-long payload. */
  push(chunk: Buffer): XsMessage[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < XSD_SOCKMSG_SIZE) return [];
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out: XsMessage[] = [];
    let off = 0;
    while (buf.length - off >= XSD_SOCKMSG_SIZE) {
      const hdr = decodeXsHeader(buf, off);
      if (hdr.len > XENSTORE_PAYLOAD_MAX) throw new ProtocolError(`message of ${hdr.len} bytes exceeds ${XENSTORE_PAYLOAD_MAX}`);
      if (buf.length - off - XSD_SOCKMSG_SIZE < hdr.len) break;
      const start = off + XSD_SOCKMSG_SIZE;
      // Copy: the handler may keep parts (values) and the socket reuses nothing, but a slice would pin the whole chunk.
      out.push({ hdr, payload: Buffer.from(buf.subarray(start, start + hdr.len)) });
      off = start + hdr.len;
    }
    buf = buf.subarray(off);
    this.chunks = buf.length ? [buf] : [];
    this.buffered = buf.length;
    return out;
  }
}

/**
 * A ZeroMQ frame holds whole messages back to back.  Returns them, or a
 * ProtocolError naming what is wrong (with the header of the broken message
 * when there is one, so the peer can be told which request failed).
 */
export function splitFrame(frame: Buffer): { messages: XsMessage[]; error?: { why: string; hdr?: XsHeader } } {
  const messages: XsMessage[] = [];
  let off = 0;
  while (off < frame.length) {
    if (frame.length - off < XSD_SOCKMSG_SIZE) return { messages, error: { why: `${frame.length - off} stray bytes, not a message header` } };
    const hdr = decodeXsHeader(frame, off);
    if (hdr.len > XENSTORE_PAYLOAD_MAX) return { messages, error: { why: `message of ${hdr.len} bytes exceeds ${XENSTORE_PAYLOAD_MAX}`, hdr } };
    const start = off + XSD_SOCKMSG_SIZE;
    if (frame.length - start < hdr.len) return { messages, error: { why: `header says ${hdr.len} payload bytes, frame has ${frame.length - start}`, hdr } };
    messages.push({ hdr, payload: Buffer.from(frame.subarray(start, start + hdr.len)) });
    off = start + hdr.len;
  }
  return { messages };
}
