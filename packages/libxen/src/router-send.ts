/**
 * Sending one frame to one peer of a ZeroMQ ROUTER that has `mandatory` set
 * and `sendTimeout: 0` (DESIGN §3: the only way to learn a peer is gone).
 * EAGAIN means the peer's queue is full: back-pressure, so wait and retry
 * for a while.  Anything else, or a peer that stays full for `stallMs`,
 * means the peer is gone.
 */
import type { Router } from 'zeromq';

/** How long a peer may refuse frames (full queue) before it is taken for gone. */
export const PEER_STALL_MS = 5_000;

export type RouterSendResult = 'sent' | 'closed' | { gone: string };

/** `frame` is one part, or the parts of one message (a frame and its bulk part, @xenbox/abi encodeParts). */
export async function sendToRouterPeer(sock: Router, identity: Buffer, frame: Buffer | readonly Buffer[], isClosed: () => boolean, stallMs = PEER_STALL_MS): Promise<RouterSendResult> {
  const giveUpAt = Date.now() + stallMs;
  const msg = Buffer.isBuffer(frame) ? [identity, frame] : [identity, ...frame];
  for (;;) {
    try {
      await sock.send(msg);
      return 'sent';
    } catch (e) {
      if (isClosed()) return 'closed';
      if ((e as { code?: string }).code === 'EAGAIN' && Date.now() < giveUpAt) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      return { gone: (e as Error).message };
    }
  }
}
