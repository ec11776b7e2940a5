/**
 * The CLI side of the supervisor's control socket: what `xenbox status`,
 * `kill`, `restart` and `down` use to reach a running `xenbox up`.
 */
import { XenError, ipcEndpoint, runDirLayout, type SupervisorCalls, type SupervisorOp } from '@xenbox/abi';
import { RpcClient } from '@xenbox/libxen';
import { liveSupervisor } from './run-dir.js';

export async function callSupervisor<O extends SupervisorOp>(runDir: string, op: O, args: SupervisorCalls[O]['args'], timeoutMs = 30_000): Promise<SupervisorCalls[O]['reply']> {
  if (liveSupervisor(runDir) === null) throw new XenError('ESRCH', `no stack is running in ${runDir} (start one with 'xenbox up --run-dir ${runDir}')`);
  const rpc = new RpcClient(ipcEndpoint(runDirLayout(runDir).supervisorSocket), { timeoutMs });
  rpc.connect();
  try {
    return await rpc.call<SupervisorCalls[O]['reply']>(op, args);
  } finally {
    await rpc.close();
  }
}
