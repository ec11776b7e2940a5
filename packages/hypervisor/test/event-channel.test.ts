import { describe, expect, it } from 'vitest';
import { DOMID_SELF, VIRQ } from '@xenbox/abi';
import { makeHypervisor } from './hv-harness.js';

describe('event channels', () => {
  it('binds an offered port, delivers sends both ways, and batches pending ports', async () => {
    const t = makeHypervisor();
    const a = t.newDomain('a');
    const b = t.newDomain('b');
    const { port: pa } = t.call(a, 'evtchn.alloc_unbound', { dom: DOMID_SELF, remote_dom: b });
    expect(t.call(a, 'evtchn.status', { dom: DOMID_SELF, port: pa })).toEqual({ status: 'unbound', vcpu: 0, dom: b });
    const { local_port: pb } = t.call(b, 'evtchn.bind_interdomain', { remote_dom: a, remote_port: pa });
    expect(t.call(a, 'evtchn.status', { dom: DOMID_SELF, port: pa })).toEqual({ status: 'interdomain', vcpu: 0, dom: b, port: pb });
    await t.flush();
    expect(t.eventsFor(b, 'evtchn.pending').map((e) => e.data.ports)).toEqual([[pb]]); // set pending on bind
    t.call(a, 'evtchn.send', { port: pa });
    t.call(a, 'evtchn.send', { port: pa });
    t.call(b, 'evtchn.send', { port: pb });
    await t.flush();
    expect(t.eventsFor(b, 'evtchn.pending').map((e) => e.data.ports)).toEqual([[pb], [pb]]); // two sends, one edge
    expect(t.eventsFor(a, 'evtchn.pending').map((e) => e.data.ports)).toEqual([[pa]]);
  });

  it('only the domain a port is offered to may bind it', () => {
    const t = makeHypervisor();
    const a = t.newDomain('a');
    const b = t.newDomain('b');
    const c = t.newDomain('c');
    const { port } = t.call(a, 'evtchn.alloc_unbound', { dom: DOMID_SELF, remote_dom: b });
    expect(t.errnoOf(() => t.call(c, 'evtchn.bind_interdomain', { remote_dom: a, remote_port: port }))).toBe('EINVAL');
    expect(t.errnoOf(() => t.call(c, 'evtchn.bind_interdomain', { remote_dom: 4000, remote_port: port }))).toBe('ESRCH');
    expect(t.errnoOf(() => t.call(c, 'evtchn.alloc_unbound', { dom: a, remote_dom: c }))).toBe('EPERM');
    expect(t.errnoOf(() => t.call(c, 'evtchn.status', { dom: a, port }))).toBe('EPERM');
    expect(t.errnoOf(() => t.call(c, 'evtchn.reset', { dom: a }))).toBe('EPERM');
    expect(t.call(a, 'evtchn.status', { dom: DOMID_SELF, port }).status).toBe('unbound');
  });

  it('send on a closed port is EINVAL, as is close of a free port; ports past the limit are EINVAL', () => {
    const t = makeHypervisor();
    const a = t.newDomain('a');
    const { port } = t.call(a, 'evtchn.bind_ipi', { vcpu: 0 });
    t.call(a, 'evtchn.close', { port });
    expect(t.errnoOf(() => t.call(a, 'evtchn.send', { port }))).toBe('EINVAL');
    expect(t.errnoOf(() => t.call(a, 'evtchn.close', { port }))).toBe('EINVAL');
    expect(t.errnoOf(() => t.call(a, 'evtchn.send', { port: 5000 }))).toBe('EINVAL');
    expect(t.errnoOf(() => t.call(a, 'evtchn.unmask', { port: 5000 }))).toBe('EINVAL');
    expect(t.call(a, 'evtchn.status', { dom: DOMID_SELF, port }).status).toBe('closed');
  });

  it('closing one end returns the other to unbound and tells it', async () => {
    const t = makeHypervisor();
    const a = t.newDomain('a');
    const b = t.newDomain('b');
    const { port: pa } = t.call(a, 'evtchn.alloc_unbound', { dom: DOMID_SELF, remote_dom: b });
    const { local_port: pb } = t.call(b, 'evtchn.bind_interdomain', { remote_dom: a, remote_port: pa });
    t.call(0, 'domctl.destroydomain', { domid: a });
    expect(t.call(b, 'evtchn.status', { dom: DOMID_SELF, port: pb })).toEqual({ status: 'unbound', vcpu: 0, dom: a });
    expect(t.eventsFor(b, 'evtchn.peer_closed')[0]!.data).toMatchObject({ port: pb, remote_dom: a });
    t.call(b, 'evtchn.send', { port: pb }); // unbound: silently dropped, as Xen does
  });

  it('VIRQs: EEXIST when bound twice, EINVAL for a global VIRQ on vCPU 1 or out of range, ENOENT for a missing vCPU', () => {
    const t = makeHypervisor();
    const a = t.newDomain('a');
    t.call(a, 'evtchn.bind_virq', { virq: VIRQ.TIMER, vcpu: 0 });
    expect(t.errnoOf(() => t.call(a, 'evtchn.bind_virq', { virq: VIRQ.TIMER, vcpu: 0 }))).toBe('EEXIST');
    expect(t.errnoOf(() => t.call(a, 'evtchn.bind_virq', { virq: VIRQ.DOM_EXC, vcpu: 1 }))).toBe('EINVAL');
    expect(t.errnoOf(() => t.call(a, 'evtchn.bind_virq', { virq: 99, vcpu: 0 }))).toBe('EINVAL');
    expect(t.errnoOf(() => t.call(a, 'evtchn.bind_virq', { virq: VIRQ.TIMER, vcpu: 3 }))).toBe('ENOENT');
  });

  it('dom0 gets VIRQ_DOM_EXC when a domain shuts down or dies', async () => {
    const t = makeHypervisor();
    const { port } = t.call(0, 'evtchn.bind_virq', { virq: VIRQ.DOM_EXC, vcpu: 0 });
    const a = t.newDomain('a');
    t.call(a, 'sched.shutdown', { reason: 'crash' });
    await t.flush();
    expect(t.call(0, 'domctl.getdomaininfo', { domid: a })).toMatchObject({ shutdown: 'crash', shutdownCode: 3, state: '---sc-' });
    t.call(0, 'domctl.destroydomain', { domid: a });
    await t.flush();
    expect(t.eventsFor(0, 'evtchn.pending').map((e) => e.data.ports)).toEqual([[port], [port]]);
  });

  it('runs out of ports with ENOSPC at the per-domain limit', () => {
    const t = makeHypervisor();
    const a = t.newDomain('a', 'service', { max_evtchn_port: 3 });
    for (let i = 0; i < 3; i++) t.call(a, 'evtchn.bind_ipi', { vcpu: 0 });
    expect(t.errnoOf(() => t.call(a, 'evtchn.bind_ipi', { vcpu: 0 }))).toBe('ENOSPC');
  });

  it('a guest gets its upcall through the vCPU hook, and an unmask of a pending port raises one', () => {
    const t = makeHypervisor();
    const upcalls: Array<[number, number]> = [];
    t.hv.setGuestUpcallHook((d, v) => upcalls.push([d.domid, v]));
    const g = t.newDomain('guest', 'pvh', { memkb: 64 });
    const { port } = t.call(g, 'evtchn.bind_ipi', { vcpu: 0 });
    const d = t.hv.domains.require(g);
    d.evtchn.setMask(port);
    t.call(g, 'evtchn.send', { port });
    expect(upcalls).toEqual([]);
    t.call(g, 'evtchn.unmask', { port });
    expect(upcalls).toEqual([[g, 0]]);
    expect(d.evtchn.isPending(port)).toBe(true);
  });
});

describe('domains and memory', () => {
  it('reports what xl list needs and follows pause, max_mem and the balloon', () => {
    const t = makeHypervisor();
    const g = t.newDomain('guest', 'pvh', { memkb: 1024, max_memkb: 2048, max_vcpus: 2 });
    expect(t.call(0, 'domctl.getdomaininfo', { domid: g })).toMatchObject({ totPages: 256, maxPages: 512, maxVcpus: 2, vcpusOnline: 2, state: '--p---', cpuTimeNs: 0 }); // a guest is born paused
    t.call(0, 'domctl.pausedomain', { domid: g });
    expect(t.call(0, 'domctl.getdomaininfo', { domid: g }).state).toBe('--p---');
    t.call(0, 'domctl.unpausedomain', { domid: g });
    expect(t.call(g, 'memory.decrease_reservation', { domid: DOMID_SELF, gfns: [0x80000, 0x80001] })).toEqual({ done: 2 });
    expect(t.call(g, 'memory.current_reservation', { domid: DOMID_SELF })).toBe(254);
    t.call(0, 'domctl.max_mem', { domid: g, max_memkb: 1024 });
    // Two fit under the new max_mem; Xen reports how many were done.
    expect(t.call(g, 'memory.populate_physmap', { domid: DOMID_SELF, gfns: [0x90000, 0x90001, 0x90002] })).toEqual({ done: 2 });
    expect(t.errnoOf(() => t.call(g, 'memory.populate_physmap', { domid: DOMID_SELF, gfns: [0x80000] }))).toBe('ENOMEM');
    expect(t.hv.domains.require(g).memory.ram!.byteLength).toBeGreaterThanOrEqual(256 * 4096);
  });

  it('refuses to create a domain beyond host memory, leaving nothing behind', () => {
    const t = makeHypervisor(8 * 1024 * 1024);
    const free = t.call(0, 'sysctl.physinfo').free_pages;
    expect(t.errnoOf(() => t.call(0, 'domctl.createdomain', { name: 'big', kind: 'pvh', memkb: 16 * 1024 }))).toBe('ENOMEM');
    expect(t.call(0, 'sysctl.physinfo').free_pages).toBe(free);
    expect(t.call(0, 'sysctl.getdomaininfolist').map((d: { name: string }) => d.name)).toEqual(['Domain-0']);
  });

  it('gives foreign memory to dom0 and to a stub domain over its target only', () => {
    const t = makeHypervisor();
    const g = t.newDomain('guest', 'pvh', { memkb: 64 });
    const dm = t.newDomain('guest-dm', 'stubdom', { target: g });
    const other = t.newDomain('other', 'pvh', { memkb: 64 });
    t.call(0, 'foreign.write', { domid: g, gfn: 0x80000, offset: 0, data: new Uint8Array([1, 2, 3]) });
    expect([...t.call(dm, 'foreign.read', { domid: g, gfn: 0x80000, offset: 0, len: 3 })]).toEqual([1, 2, 3]);
    expect(t.errnoOf(() => t.call(dm, 'foreign.read', { domid: other, gfn: 0x80000 }))).toBe('EPERM');
    expect(t.errnoOf(() => t.call(dm, 'domctl.pausedomain', { domid: g }))).toBe('EPERM');
    expect(t.errnoOf(() => t.call(0, 'foreign.read', { domid: g, gfn: 0x1234 }))).toBe('EFAULT');
  });

  it('keeps the console for xl dmesg, and -c clears it', () => {
    const t = makeHypervisor();
    const a = t.newDomain('a');
    t.call(a, 'console_io.write', { text: 'hi from a' });
    const { text } = t.call(0, 'console_io.read', { clear: true });
    expect(text).toMatch(/\(XEN\) d\d+: created domain 'a'/);
    expect(text).toMatch(/\(d\d+\) hi from a/);
    expect(t.call(0, 'console_io.read', {}).text).toBe('');
    expect(t.errnoOf(() => t.call(a, 'console_io.read', {}))).toBe('EPERM');
  });
});
