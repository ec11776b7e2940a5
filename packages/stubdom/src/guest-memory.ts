/**
 * The device model's DMA path: reads and writes of the target guest's
 * physical memory (what QEMU's address_space_rw does on a Xen stub domain
 * through xenforeignmemory_map).  Here each page piece is one
 * `foreign.read` / `foreign.write` hypercall; the hypervisor allows them
 * to dom0 and to a stub domain over its own target only (XSM_TARGET,
 * hypervisor/src/common/xsm.ts) and refuses anything else with EPERM.
 *
 * All the pieces of one access are issued in the same event-loop turn, so
 * the RPC client sends them as one batch frame: one round trip whatever
 * the length.  Accesses issued in order are performed in order (one
 * connection, handled in arrival order), which is what lets a device write
 * a request's data, then its status, then the used ring without waiting in
 * between.
 */
import { XEN_PAGE_SIZE, XenError, type DomId, type HypercallArgs, type HypercallOp, type HypercallReply } from '@xenbox/abi';

/** What a virtio device sees of the guest: guest-physical byte ranges. */
export interface GuestMemory {
  read(addr: bigint, len: number): Promise<Uint8Array>;
  write(addr: bigint, data: Uint8Array): Promise<void>;
}

/** The hypercalls ForeignMemory needs (a HypervisorConnection has them). */
export interface ForeignCaller {
  call<O extends HypercallOp>(op: O, args: HypercallArgs<O>): Promise<HypercallReply<O>>;
}

/** Most bytes one access may span (a virtio chain's buffer is at most 4 GiB, but nothing sane is near that). */
export const GUEST_MEMORY_MAX_ACCESS = 64 * 1024 * 1024;
/** Page pieces in flight at once for one big access (bounds the batch frames a huge read makes). */
const PIECES_PER_WAVE = 1024;

interface Piece {
  gfn: number;
  offset: number;
  len: number;
  /** Where the piece sits in the caller's buffer. */
  at: number;
}

/** Split [addr, addr+len) at page boundaries. */
export function pagePieces(addr: bigint, len: number): Piece[] {
  if (addr < 0n || len < 0 || !Number.isInteger(len)) throw new XenError('EINVAL', `guest memory: bad range 0x${addr.toString(16)}+${len}`);
  if (len > GUEST_MEMORY_MAX_ACCESS) throw new XenError('E2BIG', `guest memory: ${len} bytes at 0x${addr.toString(16)} is more than one access may span (${GUEST_MEMORY_MAX_ACCESS})`);
  const end = addr + BigInt(len);
  if (end > BigInt(Number.MAX_SAFE_INTEGER)) throw new XenError('EFAULT', `guest memory: 0x${addr.toString(16)}+${len} is outside any guest's physical address space`);
  const out: Piece[] = [];
  let a = Number(addr);
  let at = 0;
  while (at < len) {
    const offset = a % XEN_PAGE_SIZE;
    const n = Math.min(XEN_PAGE_SIZE - offset, len - at);
    out.push({ gfn: Math.floor(a / XEN_PAGE_SIZE), offset, len: n, at });
    a += n;
    at += n;
  }
  return out;
}

/** The target's memory through foreign.read / foreign.write. */
export class ForeignMemory implements GuestMemory {
  constructor(private readonly hv: ForeignCaller, readonly domid: DomId) {}

  async read(addr: bigint, len: number): Promise<Uint8Array> {
    const pieces = pagePieces(addr, len);
    const out = new Uint8Array(len);
    for (let i = 0; i < pieces.length; i += PIECES_PER_WAVE) {
      const wave = pieces.slice(i, i + PIECES_PER_WAVE);
      const got = await Promise.all(wave.map((p) => this.hv.call('foreign.read', { domid: this.domid, gfn: p.gfn, offset: p.offset, len: p.len })));
      wave.forEach((p, k) => out.set(got[k]!.subarray(0, p.len), p.at));
    }
    return out;
  }

  async write(addr: bigint, data: Uint8Array): Promise<void> {
    const pieces = pagePieces(addr, data.length);
    for (let i = 0; i < pieces.length; i += PIECES_PER_WAVE) {
      const wave = pieces.slice(i, i + PIECES_PER_WAVE);
      await Promise.all(wave.map((p) => this.hv.call('foreign.write', { domid: this.domid, gfn: p.gfn, offset: p.offset, data: data.subarray(p.at, p.at + p.len) })));
    }
  }
}
