/** @xenbox/xenstored: the store, watches, transactions, permissions, quotas. */
export { Xenstored } from './xenstored.js';
export { XenstoredServer, dom0SecretPath, type XenstoredServerOptions } from './server.js';
export { Store } from './store.js';
export { Connection } from './connection.js';
export { canonicalize } from './path.js';
export { parsePerms, formatPerms, permFor, type Perm, type Perms } from './permissions.js';
