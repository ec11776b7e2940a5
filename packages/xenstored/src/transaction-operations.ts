/**
 * TRANSACTION_START and TRANSACTION_END (tools/xenstored/transaction.c).
 */
import { XenError } from '@xenbox/abi';
import { Transaction } from './transaction.js';
import { oneArg, OK, type Reply, type Request } from './request.js';

export function doTransactionStart(req: Request): Reply {
  // "We don't support nested transactions."
  if (req.tx) throw new XenError('EBUSY', 'TRANSACTION_START inside a transaction');
  const { conn, xs } = req;
  const domid = conn.domid!;
  if (!conn.privileged && xs.quotas.exceeds(domid, 'transactions', xs.transactionsOf(domid) + 1)) {
    throw new XenError('ENOSPC', `domain ${domid} has ${xs.quotas.limit(domid, 'transactions')} transactions open already`);
  }
  const id = conn.allocTransactionId();
  const maxNodes = conn.privileged ? 0 : xs.quotas.limit(domid, 'transaction-nodes');
  conn.transactions.set(id, new Transaction(id, xs.store, maxNodes));
  xs.store.generation++;
  return String(id);
}

export function doTransactionEnd(req: Request): Reply {
  const arg = req.payload.length === 0 ? undefined : oneArgOrUndefined(req);
  if (arg !== 'T' && arg !== 'F') throw new XenError('EINVAL', 'TRANSACTION_END takes T (commit) or F (abort)');
  const { tx, conn, xs } = req;
  if (!tx) throw new XenError('ENOENT', 'TRANSACTION_END outside a transaction');
  conn.transactions.delete(tx.id);
  if (arg === 'F') return OK;
  if (tx.failed) throw new XenError('ENOMEM', 'the transaction failed earlier and cannot commit');
  if (!conn.privileged && tx.createdNodes) {
    for (const [domid, grows] of tx.growth()) {
      if (xs.quotas.exceeds(domid, 'nodes', xs.store.nodesOwnedBy(domid) + grows)) throw new XenError('ENOSPC', `domain ${domid} would own more than ${xs.quotas.limit(domid, 'nodes')} nodes`);
    }
  }
  tx.checkConflicts();
  tx.apply((path, exact, oldPerms) => xs.watches.fire(path, undefined, exact, oldPerms));
  return OK;
}

function oneArgOrUndefined(req: Request): string | undefined {
  try {
    return oneArg(req);
  } catch {
    return undefined;
  }
}
