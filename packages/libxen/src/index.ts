/** @xenbox/libxen — what a domain process links against (like Xen's tools/libs). */
export * from './logger.js';
export * from './rpc-client.js';
export * from './rpc-server.js';
export * from './hypervisor-connection.js';
export * from './bootstrap.js';
export * from './xenstore-client.js';
export * from './router-send.js';
export * from './mirror.js';
export * from './evtchn.js';
export * from './gnttab.js';
export * from './foreign-memory.js';
export * from './ring.js';
export * from './curve.js';
export * from './malloc-tuning.js';
export * from './xenbus.js';
export * from './blkfront.js';
export * from './netfront.js';
