/**
 * Which program embodies each service, and the specs of the core services.
 * Entry points are found through each package's `./main` export, so the
 * supervisor runs exactly the compiled code `pnpm install` built.
 */
import { fileURLToPath } from 'node:url';
import { ENV_ARGS } from '@xenbox/abi';
import type { ServiceSpec } from './service.js';
import type { ServiceConfig, StackConfig } from './stack-config.js';

const PROGRAMS: Record<string, string> = {
  hypervisor: '@xenbox/hypervisor/main',
  xenstored: '@xenbox/xenstored/main',
  netback: '@xenbox/netback/main',
  blkback: '@xenbox/blkback/main',
  stubdom: '@xenbox/stubdom/main',
  xenconsoled: '@xenbox/dom0/xenconsoled',
};

export function programPath(kind: string): string {
  const spec = PROGRAMS[kind];
  if (!spec) throw new Error(`no program for service kind '${kind}'`);
  return fileURLToPath(import.meta.resolve(spec));
}

/** Stop order: higher tiers stop first. */
export const TIER = { hypervisor: 0, xenstored: 1, dom0: 2, driver: 3 } as const;

/** hypervisor, xenstored, xenconsoled: what every stack runs, in boot order. */
export function coreServiceSpecs(runDir: string, config: StackConfig): ServiceSpec[] {
  const policy = config.restart.policy;
  const pcpus = config.hypervisor?.pcpus;
  const hvArgv = ['--run-dir', runDir, ...(pcpus !== undefined ? ['--pcpus', String(pcpus)] : [])];
  return [
    { name: 'hypervisor', kind: 'hypervisor', module: programPath('hypervisor'), argv: hvArgv, env: {}, restart: 'never', ownDomain: false, tier: TIER.hypervisor },
    { name: 'xenstored', kind: 'xenstored', module: programPath('xenstored'), argv: [], env: {}, restart: policy, ownDomain: true, tier: TIER.xenstored },
    { name: 'xenconsoled', kind: 'xenconsoled', module: programPath('xenconsoled'), argv: [], env: {}, restart: policy, ownDomain: false, tier: TIER.dom0 },
  ];
}

export function driverServiceSpec(s: ServiceConfig): ServiceSpec {
  return {
    name: s.name,
    kind: s.kind,
    module: programPath(s.kind),
    argv: [],
    env: { [ENV_ARGS]: JSON.stringify(s.args) },
    restart: s.restart,
    ownDomain: true,
    tier: TIER.driver,
  };
}
