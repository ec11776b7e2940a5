/**
 * xl.cfg for xenbox's `xl`: the config grammar, the key table, the typed
 * DomainConfig, and the disk / vif / CPULIST spec grammars.  See
 * docs/xl-cfg.md for what xenbox implements, ignores and refuses.
 */
export * from './lexer.js';
export * from './parser.js';
export * from './typed-values.js';
export * from './keys.js';
export * from './cpulist.js';
export * from './disk-spec.js';
export * from './vif-spec.js';
export * from './domain-config.js';
