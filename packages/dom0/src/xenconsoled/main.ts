#!/usr/bin/env node
/**
 * xenconsoled: dom0's console daemon (tools/console/daemon).  It runs with
 * dom0's privilege, takes every guest's console output from the hypervisor
 * (console.subscribe), logs it to $RUN_DIR/console/guest-<name>.log, and lets
 * `xl console` attach through $RUN_DIR/console/xenconsoled.sock
 * (protocol: @xenbox/abi console-attach.ts).  PVH guests' PV console rings
 * (ring-consoles.ts) feed the same log and stream; keyboard input goes to a
 * guest's ring once it uses one, else to its SBI console.
 */
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { CONSOLE_ATTACH_VERB, XenError, type ConsoleOutputEvent, type DomId } from '@xenbox/abi';
import { bootstrapDomain, runMain, type DomainProcess } from '@xenbox/libxen';
import { ConsoleHub } from './console-hub.js';
import { ConsoleMerge, type ConsoleSource } from './console-merge.js';
import { RingConsoles } from './ring-consoles.js';

const MAX_ATTACH_LINE = 64;

async function nameOf(dom: DomainProcess, domid: DomId, cache: Map<DomId, string>): Promise<string> {
  let name = cache.get(domid);
  if (!name) {
    name = (await dom.hv.call('domctl.getdomaininfo', { domid })).name;
    cache.set(domid, name);
  }
  return name;
}

/** One `xl console` connection: the ATTACH line, then bytes both ways. */
type Input = (domid: DomId, data: Uint8Array) => void;

function serveAttach(dom: DomainProcess, hub: ConsoleHub, names: Map<DomId, string>, input: Input, sock: Socket): void {
  let head = Buffer.alloc(0);
  let domid: DomId | null = null;
  const fail = (e: unknown) => {
    const err = e instanceof XenError ? e : new XenError('EINVAL', (e as Error).message);
    sock.end(`ERR ${err.errno} ${err.detail}\n`);
  };
  sock.on('error', () => sock.destroy());
  sock.on('data', (chunk: Buffer) => {
    if (domid !== null) {
      input(domid, chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const nl = head.indexOf(0x0a);
    if (nl < 0) {
      if (head.length > MAX_ATTACH_LINE) fail(new XenError('EINVAL', 'expected "ATTACH <domid>" first'));
      return;
    }
    const m = new RegExp(`^${CONSOLE_ATTACH_VERB} (\\d{1,5})$`).exec(head.subarray(0, nl).toString('latin1'));
    const rest = head.subarray(nl + 1);
    if (!m) return fail(new XenError('EINVAL', 'expected "ATTACH <domid>" first'));
    const id = Number(m[1]);
    sock.pause();
    nameOf(dom, id, names).then(
      (name) => {
        domid = id;
        sock.write(`OK ${name}\n`);
        sock.write(hub.attach(id, name, sock));
        if (rest.length) input(id, rest);
        sock.resume();
      },
      (e: unknown) => fail(e instanceof XenError && e.errno === 'ESRCH' ? new XenError('ESRCH', `no domain ${id}`) : e),
    );
  });
}

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'xenconsoled' });
  const hub = new ConsoleHub(dom.layout);
  const names = new Map<DomId, string>();
  // One chain per guest: a chunk waits for the one before it, even while the
  // guest's name is still being looked up (a later chunk that found the name
  // cached used to overtake an earlier one still waiting for its lookup).
  const chains = new Map<DomId, Promise<void>>();
  const output = (domid: DomId, data: Uint8Array) => {
    const next = (chains.get(domid) ?? Promise.resolve())
      .then(() => nameOf(dom, domid, names))
      .then(
        (name) => hub.output(domid, name, data),
        () => hub.output(domid, `d${domid}`, data),
      );
    chains.set(domid, next);
    void next.finally(() => {
      if (chains.get(domid) === next) chains.delete(domid);
    });
  };
  // A guest's SBI console and its console ring, one stream switching at line ends (console-merge.ts).
  const merges = new Map<DomId, ConsoleMerge>();
  const merged = (domid: DomId, src: ConsoleSource, data: Uint8Array) => {
    let m = merges.get(domid);
    if (!m) merges.set(domid, (m = new ConsoleMerge((d) => void output(domid, d))));
    m.push(src, data);
  };
  dom.hv.on('console.output', (ev: ConsoleOutputEvent) => merged(ev.domid, 'sbi', ev.data));
  try {
    await dom.hv.call('console.subscribe', {});
  } catch (e) {
    dom.log.warn({ err: (e as Error).message }, 'the hypervisor has no guest consoles to give (console.subscribe failed)');
  }
  let rings: RingConsoles | null = null;
  try {
    rings = new RingConsoles(dom, await dom.xenstore(), (domid, data) => merged(domid, 'ring', data));
    await rings.start();
    const r = rings;
    dom.onShutdown(() => r.stop());
  } catch (e) {
    rings = null;
    dom.log.warn({ err: (e as Error).message }, 'no xenstore: guests\' console rings will not be served');
  }
  const input: Input = (domid, data) => {
    if (rings?.takesInput(domid)) rings.input(domid, data);
    else dom.hv.post('console.input', { domid, data });
  };
  rmSync(dom.layout.consoleSocket, { force: true });
  const server = createServer((sock) => serveAttach(dom, hub, names, input, sock));
  await new Promise<void>((res, rej) => server.listen(dom.layout.consoleSocket, res).once('error', rej));
  dom.onShutdown(() => new Promise<void>((res) => server.close(() => res())));
  dom.onShutdown(() => rmSync(dom.layout.consoleSocket, { force: true }));
  dom.log.info({ socket: dom.layout.consoleSocket }, 'serving consoles');
  dom.ready();
});
