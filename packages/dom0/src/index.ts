export * from './supervisor/stack-config.js';
export * from './supervisor/status-table.js';
export * from './supervisor/log-view.js';
export * from './supervisor/run-dir.js';
export * from './xlcfg/index.js';
export * from './supervisor/chaos.js';
export * from './libxl/domain-create.js';
export * from './supervisor/control-client.js';
