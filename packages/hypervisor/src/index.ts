export * from './hypervisor.js';
export * from './common/domain.js';
export * from './common/console.js';
export * from './launch.js';
