/** A hypervisor without sockets: domains call through the real hypercall table; pushed events are recorded. */
import { XenError } from '@xenbox/abi';
import { Hypervisor } from '../src/hypervisor.js';

const noop = () => undefined;
const silentLog = { info: noop, warn: noop, error: noop, debug: noop, trace: noop, fatal: noop, child: () => silentLog } as unknown as ConstructorParameters<typeof Hypervisor>[0]['log'];

export interface Pushed {
  peerKey: string;
  ev: string;
  data: any;
}

export function makeHypervisor(hostMemBytes = 64 * 1024 * 1024) {
  const events: Pushed[] = [];
  const hv = new Hypervisor({ runDir: '/nonexistent', log: silentLog, hostMemBytes, onUnroutedEvent: (peerKey, ev, data) => events.push({ peerKey, ev, data }) });
  hv.bootForTest();
  hv.attachConnection(0, 'local-d0');
  const call = (domid: number, op: string, args: unknown = {}): any => hv.hypercall(domid, op, args);
  const newDomain = (name: string, kind: 'service' | 'pvh' | 'stubdom' = 'service', extra: Record<string, unknown> = {}): number => {
    const { domid } = call(0, 'domctl.createdomain', { name, kind, ...extra });
    hv.attachConnection(domid, `local-d${domid}`);
    return domid;
  };
  const errnoOf = (fn: () => unknown): string | null => {
    try {
      fn();
      return null;
    } catch (e) {
      if (e instanceof XenError) return e.errno;
      throw e;
    }
  };
  const flush = () => new Promise<void>((r) => setTimeout(r, 0));
  const eventsFor = (domid: number, ev: string) => events.filter((e) => e.peerKey === `local-d${domid}` && e.ev === ev);
  return { hv, events, call, newDomain, errnoOf, flush, eventsFor };
}
