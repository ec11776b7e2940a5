export * from './bridge-config.js';
