/**
 * @xenbox/abi — the ABI of the stack, declared once (like xen/include/public).
 * Pure data and pure functions; no I/O.
 */
export * from './errno.js';
export * from './domid.js';
export * from './domain.js';
export * from './frame.js';
export { BULK_MIN_BYTES, BULK_REF_EXT, BULK_REF_BYTES, handOverBulk } from './frame-bulk.js';
export * from './args.js';
export * from './hypercall.js';
export * from './supervisor.js';
export * from './rundir.js';
export * from './riscv-sbi.js';
export * from './xenstore.js';
export * from './memory.js';
export * from './grant-table.js';
export * from './gnttab-copy.js';
export * from './event-channel.js';
export * from './ring.js';
export * from './arg-checks.js';
export * from './sched.js';
export * from './guest.js';
export * from './console-attach.js';
export * from './shared-info.js';
export * from './guest-structs.js';
export * from './ioreq.js';
export * from './xenbus.js';
export * from './blkif.js';
export * from './netif.js';
export * from './pcap.js';
export * from './hvm-params.js';
export * from './console-ring.js';
export * from './evtchn-reoffer.js';
export * from './virtio.js';
export * from './virtio-net.js';
export * from './virt-board.js';
export * from './vnc.js';
