export * from './device.js';
export * from './device-model.js';
export * from './virt-board.js';
export * from './devices/ns16550.js';
export * from './devices/sifive-test.js';
export * from './devices/virtio-mmio.js';
export * from './guest-memory.js';
export * from './devices/virtqueue.js';
