/**
 * The first guest's setvcpucontext waits for the pCPU threads to start; a
 * destroy that lands meanwhile must not leave the dead domain's vCPU in the
 * scheduler (where it would run, unseen by xl list, until the host stops).
 * Uses the compiled hypervisor: the pCPU worker threads load compiled JS.
 */
import { expect, it } from 'vitest';
import { silentLogger } from '@xenbox/libxen';
import { Hypervisor } from '../dist/hypervisor.js';

const noop = (): undefined => undefined;

it('a guest destroyed while the first pCPU threads start gets ESRCH from setvcpucontext, and no vCPU of it is scheduled', async () => {
  const hv = new Hypervisor({ runDir: '/nonexistent', log: silentLogger(), hostMemBytes: 64 * 1024 * 1024, onUnroutedEvent: noop });
  hv.bootForTest();
  hv.attachConnection(0, 'local-d0');
  try {
    const { domid } = hv.hypercall(0, 'domctl.createdomain', { name: 'g', kind: 'pvh', memkb: 1024 }) as { domid: number };
    const set = hv.hypercall(0, 'domctl.setvcpucontext', { domid, vcpu: 0, ctx: { pc: 0x8000_0000, a0: 0, a1: 0, mode: 'S' } });
    hv.hypercall(0, 'domctl.destroydomain', { domid });
    await expect(set).rejects.toMatchObject({ errno: 'ESRCH' });
    expect(hv.guests.cpuTime(domid)).toBeNull();
  } finally {
    await hv.guests.stop();
  }
});
