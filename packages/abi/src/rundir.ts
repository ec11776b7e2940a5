/**
 * The layout of a run directory ($RUN_DIR): where every process finds the
 * sockets, tokens and logs of one stack.  Created mode 0700 by the supervisor.
 */
import { join } from 'node:path';

/** Environment variables a domain process is started with. */
export const ENV_RUN_DIR = 'XENBOX_RUN_DIR';
export const ENV_DOMID = 'XENBOX_DOMID';
export const ENV_TOKEN = 'XENBOX_TOKEN';
export const ENV_NAME = 'XENBOX_NAME';
/** The secret a process domain presents to xenstored (docs/xenstored.md, "Authentication"). */
export const ENV_XS_SECRET = 'XENBOX_XS_SECRET';
/** Extra per-service arguments, JSON encoded. */
export const ENV_ARGS = 'XENBOX_ARGS';

/** sockaddr_un.sun_path is 108 bytes including the NUL. */
export const IPC_PATH_MAX = 107;

export const runDirLayout = (runDir: string) => ({
  root: runDir,
  /** The hypervisor's ROUTER: every domain process connects a DEALER here. */
  hypervisorSocket: join(runDir, 'hypervisor.sock'),
  /** dom0's credential, minted by the hypervisor at boot (mode 0600), like /dev/xen/privcmd being root-only. */
  dom0Token: join(runDir, 'hypervisor', 'dom0.token'),
  hypervisorDir: join(runDir, 'hypervisor'),
  /** The supervisor's control socket (`xenbox status|kill|restart|down`). */
  supervisorSocket: join(runDir, 'xenbox.sock'),
  supervisorPid: join(runDir, 'xenbox.pid'),
  /** What the supervisor is running, rewritten on every change: lets a new supervisor clean up after a killed one. */
  supervisorState: join(runDir, 'xenbox.state.json'),
  logs: join(runDir, 'logs'),
  logFile: (name: string) => join(runDir, 'logs', `${name}.log`),
  /** xenconsoled: guest console logs (guest-<name>.log, as xenconsoled --log=guest) and the socket `xl console` attaches through. */
  consoleDir: join(runDir, 'console'),
  consoleSocket: join(runDir, 'console', 'xenconsoled.sock'),
  consoleLog: (name: string) => join(runDir, 'console', `guest-${name}.log`),
  /** libxl's per-domain userdata (Xen: /var/lib/xen/userdata-d.<domid>.<uuid>.libxl-json): the config a guest was created from. */
  userdata: (domid: number) => join(runDir, 'userdata', `d${domid}.libxl-json`),
  xenstoredDir: join(runDir, 'xenstored'),
  xenstoredSocket: join(runDir, 'xenstored', 'socket'),
  /** xenstored's ZeroMQ ROUTER for process domains (raw xsd_sockmsg frames; docs/xenstored.md). */
  xenstoredZmqSocket: join(runDir, 'xenstored', 'xs.sock'),
});

export type RunDirLayout = ReturnType<typeof runDirLayout>;

export const ipcEndpoint = (path: string) => `ipc://${path}`;
