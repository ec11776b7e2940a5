/**
 * Front and back ends of a shared ring (xen/include/public/io/ring.h), on a
 * page held as a mirror.  The bytes on the page are ring.h's exactly
 * (req_prod @0, req_event @4, rsp_prod @8, rsp_event @12, entries @64); the
 * algorithms are the macros', with each memory barrier turned into a mirror
 * operation (DESIGN §4):
 *
 *   wmb() before publishing a producer index  -> nothing: a flush carries
 *                                                the entries and the index
 *                                                together, in order
 *   mb() in PUSH_*_AND_CHECK_NOTIFY and
 *        FINAL_CHECK_FOR_*                    -> sync(): flush + refresh, one
 *                                                round trip
 *
 * A back end copies each request out of the page once (RING_COPY_REQUEST)
 * and hands out only the copy; indices from the other side are checked so a
 * lying peer cannot make us overrun (RING_REQUEST_PROD_OVERFLOW and its
 * response-side twin).
 */
import {
  RING_HEADER_SIZE,
  RING_REQ_EVENT_OFFSET,
  RING_REQ_PROD_OFFSET,
  RING_RSP_EVENT_OFFSET,
  RING_RSP_PROD_OFFSET,
  XEN_PAGE_SIZE,
  XenError,
  ringIdxSub,
  ringNeedsNotify,
  ringSize,
  ringSlotOffset,
} from '@xenbox/abi';

/** What a ring needs of a page: a MirrorPage fits. */
export interface RingPage {
  u32(offset: number): number;
  setU32(offset: number, v: number): void;
  read(offset: number, len: number): Uint8Array;
  write(offset: number, data: Uint8Array): void;
  /** Full barrier: publish our writes and see the peer's. */
  sync(): Promise<void>;
}

abstract class RingEnd {
  readonly size: number;

  constructor(
    protected readonly page: RingPage,
    readonly entrySize: number,
  ) {
    this.size = ringSize(entrySize, XEN_PAGE_SIZE);
  }

  protected slot(idx: number): number {
    return ringSlotOffset(idx, this.size, this.entrySize);
  }

  protected writeEntry(idx: number, entry: Uint8Array): void {
    if (entry.length > this.entrySize) throw new XenError('EINVAL', `ring entry of ${entry.length} bytes exceeds ${this.entrySize}`);
    const padded = new Uint8Array(this.entrySize);
    padded.set(entry);
    this.page.write(this.slot(idx), padded);
  }
}

export class FrontRing extends RingEnd {
  reqProdPvt = 0;
  rspCons = 0;

  /** SHARED_RING_INIT + FRONT_RING_INIT: the front owns initialisation. */
  static init(page: RingPage, entrySize: number): FrontRing {
    page.write(0, new Uint8Array(RING_HEADER_SIZE));
    page.setU32(RING_REQ_EVENT_OFFSET, 1);
    page.setU32(RING_RSP_EVENT_OFFSET, 1);
    return new FrontRing(page, entrySize);
  }

  /** FRONT_RING_ATTACH: resume on a ring that already has traffic. */
  static attach(page: RingPage, entrySize: number): FrontRing {
    const r = new FrontRing(page, entrySize);
    r.reqProdPvt = page.u32(RING_REQ_PROD_OFFSET);
    r.rspCons = page.u32(RING_RSP_PROD_OFFSET);
    return r;
  }

  /** RING_FREE_REQUESTS */
  freeRequests(): number {
    return this.size - ringIdxSub(this.reqProdPvt, this.rspCons);
  }

  /** Put a request in the next slot (not yet visible to the back). */
  queueRequest(entry: Uint8Array): void {
    if (this.freeRequests() === 0) throw new XenError('ENOSPC', 'ring full: no free request slot');
    this.writeEntry(this.reqProdPvt, entry);
    this.reqProdPvt = (this.reqProdPvt + 1) >>> 0;
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: true if the back end must be notified. */
  async pushRequestsAndCheckNotify(): Promise<boolean> {
    const old = this.page.u32(RING_REQ_PROD_OFFSET);
    const now = this.reqProdPvt;
    this.page.setU32(RING_REQ_PROD_OFFSET, now);
    await this.page.sync();
    return ringNeedsNotify(old, now, this.page.u32(RING_REQ_EVENT_OFFSET));
  }

  /** RING_HAS_UNCONSUMED_RESPONSES, refusing a back end that claims more than the ring holds. */
  unconsumedResponses(): number {
    const n = ringIdxSub(this.page.u32(RING_RSP_PROD_OFFSET), this.rspCons);
    if (n > this.size) throw new XenError('EIO', `ring: back end claims ${n} responses in a ring of ${this.size}`);
    return n;
  }

  /** Copy the next response out and consume it. */
  takeResponse(): Uint8Array {
    if (this.unconsumedResponses() === 0) throw new XenError('ENOENT', 'ring: no response to take');
    const entry = this.page.read(this.slot(this.rspCons), this.entrySize);
    this.rspCons = (this.rspCons + 1) >>> 0;
    return entry;
  }

  /** RING_FINAL_CHECK_FOR_RESPONSES: true if there is work; otherwise rsp_event is armed. */
  async finalCheckForResponses(): Promise<boolean> {
    if (this.unconsumedResponses() > 0) return true;
    this.page.setU32(RING_RSP_EVENT_OFFSET, (this.rspCons + 1) >>> 0);
    await this.page.sync();
    return this.unconsumedResponses() > 0;
  }
}

export class BackRing extends RingEnd {
  reqCons = 0;
  rspProdPvt = 0;

  /** BACK_RING_INIT / BACK_RING_ATTACH */
  static attach(page: RingPage, entrySize: number): BackRing {
    const r = new BackRing(page, entrySize);
    r.rspProdPvt = page.u32(RING_RSP_PROD_OFFSET);
    r.reqCons = r.rspProdPvt;
    return r;
  }

  /**
   * RING_HAS_UNCONSUMED_REQUESTS: min(req_prod - req_cons, size - (req_cons -
   * rsp_prod_pvt)); a front that claims more than a ring's worth is refused
   * (RING_REQUEST_PROD_OVERFLOW).
   */
  unconsumedRequests(): number {
    const prod = this.page.u32(RING_REQ_PROD_OFFSET);
    if (ringIdxSub(prod, this.rspProdPvt) > this.size) throw new XenError('EIO', `ring: front end claims ${ringIdxSub(prod, this.rspProdPvt)} requests in a ring of ${this.size}`);
    return Math.min(ringIdxSub(prod, this.reqCons), this.size - ringIdxSub(this.reqCons, this.rspProdPvt));
  }

  /** RING_COPY_REQUEST + req_cons++: the request is read from the page once; use only the copy. */
  takeRequest(): Uint8Array {
    if (this.unconsumedRequests() === 0) throw new XenError('ENOENT', 'ring: no request to take');
    const entry = this.page.read(this.slot(this.reqCons), this.entrySize);
    this.reqCons = (this.reqCons + 1) >>> 0;
    return entry;
  }

  queueResponse(entry: Uint8Array): void {
    if (this.rspProdPvt === this.reqCons) throw new XenError('EINVAL', 'ring: no request awaits a response');
    this.writeEntry(this.rspProdPvt, entry);
    this.rspProdPvt = (this.rspProdPvt + 1) >>> 0;
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY */
  async pushResponsesAndCheckNotify(): Promise<boolean> {
    const old = this.page.u32(RING_RSP_PROD_OFFSET);
    const now = this.rspProdPvt;
    this.page.setU32(RING_RSP_PROD_OFFSET, now);
    await this.page.sync();
    return ringNeedsNotify(old, now, this.page.u32(RING_RSP_EVENT_OFFSET));
  }

  /** RING_FINAL_CHECK_FOR_REQUESTS: true if there is work; otherwise req_event is armed. */
  async finalCheckForRequests(): Promise<boolean> {
    if (this.unconsumedRequests() > 0) return true;
    this.page.setU32(RING_REQ_EVENT_OFFSET, (this.reqCons + 1) >>> 0);
    await this.page.sync();
    return this.unconsumedRequests() > 0;
  }
}
