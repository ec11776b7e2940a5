/**
 * A domain's control connection to the hypervisor, like libxencall's privcmd
 * fd: a DEALER on ipc://$RUN_DIR/hypervisor.sock whose first frame proves which
 * domain this process embodies (`hello` with the hypervisor-minted token).
 * Until that succeeds the hypervisor serves nothing else on the connection.
 */
import {
  ipcEndpoint,
  runDirLayout,
  type DomId,
  type HelloReply,
  type HypercallArgs,
  type HypercallOp,
  type HypercallReply,
  type HypervisorEvent,
  type HypervisorEvents,
} from '@xenbox/abi';
import type { Logger } from 'pino';
import { RpcClient, type CallOptions } from './rpc-client.js';
import type { CurveClientKeys } from './curve.js';

export interface HypervisorConnectOptions {
  /** The run dir whose hypervisor to reach (ipc://$RUN_DIR/hypervisor.sock) ... */
  runDir?: string;
  /** ... or an explicit endpoint (tcp:// for remote hosts). */
  endpoint?: string;
  domid: DomId;
  token: string;
  timeoutMs?: number;
  log?: Logger;
  /** For a tcp:// endpoint: the hypervisor's public key and this client's key pair. */
  curve?: CurveClientKeys;
}

export class HypervisorConnection {
  private constructor(
    private readonly rpc: RpcClient,
    readonly self: HelloReply,
  ) {}

  /** Connect and authenticate; rejects with the hypervisor's EACCES if the token is wrong. */
  static async connect(opts: HypervisorConnectOptions): Promise<HypervisorConnection> {
    const endpoint = opts.endpoint ?? ipcEndpoint(runDirLayout(requireRunDir(opts)).hypervisorSocket);
    const rpc = new RpcClient(endpoint, { timeoutMs: opts.timeoutMs, log: opts.log, curve: opts.curve });
    rpc.connect();
    try {
      const self = await rpc.call<HelloReply>('hello', { domid: opts.domid, token: opts.token });
      return new HypervisorConnection(rpc, self);
    } catch (e) {
      await rpc.close();
      throw e;
    }
  }

  get domid(): DomId {
    return this.self.domid;
  }

  /** Make a hypercall; the reply type follows from the op (see @xenbox/abi hypercall.ts). */
  call<O extends HypercallOp>(op: O, args: HypercallArgs<O>, opts?: { timeoutMs?: number; onReply?: (reply: HypercallReply<O>) => void }): Promise<HypercallReply<O>> {
    return this.rpc.call<HypercallReply<O>>(op, args, opts as CallOptions | undefined);
  }

  /** Make a hypercall without waiting for its result (see RpcClient.post). */
  post<O extends HypercallOp>(op: O, args: HypercallArgs<O>): void {
    this.rpc.post(op, args);
  }

  on<E extends HypervisorEvent>(ev: E, fn: (data: HypervisorEvents[E]) => void): () => void {
    return this.rpc.on(ev, (d) => fn(d as HypervisorEvents[E]));
  }

  get inFlight(): number {
    return this.rpc.inFlight;
  }

  close(): Promise<void> {
    return this.rpc.close();
  }
}

function requireRunDir(opts: HypervisorConnectOptions): string {
  if (!opts.runDir) throw new Error('HypervisorConnection: give runDir or endpoint');
  return opts.runDir;
}
