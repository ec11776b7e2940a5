/**
 * A stack with one blkback (and no netback, no guests) plus what the blkback
 * tests need around it: dom0's connections, front-end process domains made
 * the way the toolstack makes them, and vbds added with libxl's keys.
 */
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backendPath, runDirLayout, type DomId, type ServiceStatus } from '@xenbox/abi';
import { HypervisorConnection, XenstoreClient, readXenbusState } from '@xenbox/libxen';
// The toolstack's own code, compiled (tests run against dist, as the stack does).
import { addDevice } from '../../packages/dom0/dist/libxl/device.js';
import { introduceDomain } from '../../packages/dom0/dist/libxl/domain-xenstore.js';
import { tempRunDir } from './paths.js';
import { TestStack } from './stack.js';

export interface FrontDomain {
  domid: DomId;
  hv: HypervisorConnection;
  xs: XenstoreClient;
}

export class BlkStack {
  private readonly fronts: FrontDomain[] = [];
  private blkback: DomId | null = null;

  private constructor(
    readonly stack: TestStack,
    readonly dom0: HypervisorConnection,
    readonly xs: XenstoreClient,
  ) {}

  /** `blkbackArgs`: the blkback service's args (e.g. `{ persistentGrants: true }`). */
  static async up(tag: string, blkbackArgs: Record<string, unknown> = {}): Promise<BlkStack> {
    const cfgDir = tempRunDir(`${tag}cfg`);
    const cfg = join(cfgDir, 'blk.json');
    writeFileSync(cfg, JSON.stringify({ services: [{ name: 'blkback', kind: 'blkback', args: blkbackArgs }], autostart: null, hypervisor: { pcpus: 1 } }));
    try {
      const s = await TestStack.up(tag, ['--config', cfg]);
      const token = readFileSync(runDirLayout(s.runDir).dom0Token, 'utf8').trim();
      const dom0 = await HypervisorConnection.connect({ runDir: s.runDir, domid: 0, token });
      const xs = await XenstoreClient.connectRunDir(s.runDir);
      return new BlkStack(s, dom0, xs);
    } finally {
      rmSync(cfgDir, { recursive: true, force: true });
    }
  }

  /** A service as the supervisor's state file has it (no `xenbox status` process per look). */
  service(name: string): ServiceStatus | undefined {
    try {
      const st = JSON.parse(readFileSync(runDirLayout(this.stack.runDir).supervisorState, 'utf8')) as { services: ServiceStatus[] };
      return st.services.find((x) => x.name === name);
    } catch {
      return undefined; // being rewritten; look again
    }
  }

  /** The blkback's domid (looked up once; `fresh` waits for a new incarnation after a restart). */
  async blkbackDomid(fresh = false): Promise<DomId> {
    if (this.blkback !== null && !fresh) return this.blkback;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const x = this.service('blkback');
      if (x && x.state === 'ready' && x.domid !== null && x.domid !== this.blkback) return (this.blkback = x.domid);
      if (Date.now() > deadline) throw new Error(`blkback is not ready: ${JSON.stringify(x)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The blkback process's pid. */
  blkbackPid(): number {
    const pid = this.service('blkback')?.pid;
    if (!pid) throw new Error('blkback has no pid');
    return pid;
  }

  /** A process domain to run a front end in: created, introduced to xenstored, connected. */
  async frontDomain(name: string): Promise<FrontDomain> {
    const d = await this.dom0.call('domctl.createdomain', { name, kind: 'service' });
    const secret = await introduceDomain(this.xs, d.domid, name);
    const hv = await HypervisorConnection.connect({ runDir: this.stack.runDir, domid: d.domid, token: d.token });
    const xs = await XenstoreClient.connectZmq({ runDir: this.stack.runDir }, { domid: d.domid, secret });
    const f = { domid: d.domid, hv, xs };
    this.fronts.push(f);
    return f;
  }

  /** Add a vbd with the keys xl's toolstack writes for a qdisk (packages/dom0/src/libxl/device-vbd.ts vbdKeys). */
  async addVbd(o: { frontend: DomId; devid: number; params: string; mode?: 'w' | 'r'; deviceType?: 'disk' | 'cdrom'; discard?: boolean; backend?: DomId }): Promise<void> {
    const backend = o.backend ?? (await this.blkbackDomid());
    await addDevice(this.xs, { kind: 'vbd', backend, frontend: o.frontend, devid: o.devid, ...vbdKeys(o) });
  }

  async backendState(frontend: DomId, devid: number, backend?: DomId): Promise<number> {
    return readXenbusState(this.xs, backendPath(backend ?? (await this.blkbackDomid()), 'vbd', frontend, devid));
  }

  async down(): Promise<void> {
    for (const f of this.fronts) {
      f.xs.close();
      await f.hv.close().catch(() => undefined);
    }
    this.xs.close();
    await this.dom0.close().catch(() => undefined);
    // Keep the logs of the last run for a failure's post-mortem.
    if (process.env.XB_KEEP_LOGS) cpSync(join(this.stack.runDir, 'logs'), process.env.XB_KEEP_LOGS, { recursive: true });
    await this.stack.destroy();
  }
}

function vbdKeys(o: { devid: number; params: string; mode?: 'w' | 'r'; deviceType?: 'disk' | 'cdrom'; discard?: boolean }) {
  const deviceType = o.deviceType ?? 'disk';
  return {
    backendKeys: {
      params: o.params,
      type: 'qdisk',
      dev: 'xvda',
      mode: o.mode ?? 'w',
      'device-type': deviceType,
      removable: '0',
      bootable: '1',
      'discard-enable': o.discard === false ? '0' : '1',
    },
    frontendKeys: { 'virtual-device': String(o.devid), 'device-type': deviceType, trusted: '1' },
  };
}
