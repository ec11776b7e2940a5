/**
 * A full memory barrier between threads sharing guest RAM.
 *
 * Guest RAM is a SharedArrayBuffer touched with plain typed-array accesses
 * by vCPU workers and by the hypervisor's main thread.  Plain accesses may
 * be reordered (on x86, a store may pass a later load to another address;
 * the JIT may too).  ring.h's mb() — "publish req_prod, then read
 * req_event" — needs exactly that store->load order, so a guest's FENCE and
 * the hypervisor's mirror sync (write a backend's changes into the page,
 * then read the page back) both go through here: a sequentially consistent
 * atomic read-modify-write, which V8 keeps in order with the surrounding
 * accesses and which x86 executes as a LOCKed instruction (a full fence).
 */
const CELL = new Int32Array(new SharedArrayBuffer(4));

export function fullFence(): void {
  Atomics.add(CELL, 0, 0);
}
