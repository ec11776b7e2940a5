/**
 * `pnpm bench evtchn`: event-channel ping-pong between two process domains.
 *
 * This process is one domain; a child process (test/fixtures/ring-peer.mjs,
 * role pingpong) is the other and echoes every event.  One round = send,
 * the hypervisor delivers to the peer, the peer sends back, delivered to us:
 * four ZeroMQ hops through the hypervisor.  Baselines from the same run:
 * a raw ZeroMQ round trip to an echo process (two hops: the target
 * is against this), and a raw ZeroMQ relay through a broker process to an
 * echoing peer process (four hops, nothing but ZeroMQ: the floor for an
 * event that must cross a third process).  Notifications are posted
 * (Evtchn.notify: no reply frame).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ipcEndpoint, runDirLayout } from '@xenbox/abi';
import { launchHypervisor } from '@xenbox/hypervisor';
import { Evtchn, HypervisorConnection } from '@xenbox/libxen';
import { median, result, type Benchmark } from './harness.js';
import { startCpuMeter } from './proc-cpu.js';
import { echoOnce, relayOnce, startRawEcho, startRawRelay } from './raw-echo.js';

const PEER = fileURLToPath(new URL('../../test/fixtures/ring-peer.mjs', import.meta.url));
const ROUNDS = 5;
const PER_ROUND = 2000;

export const benchmark: Benchmark = {
  name: 'evtchn',
  description: 'event-channel ping-pong between two process domains vs raw ZeroMQ round trip',
  async run({ tmpDir, progress }) {
    const hyp = await launchHypervisor(tmpDir);
    const dom0 = await HypervisorConnection.connect({ runDir: tmpDir, domid: 0, token: hyp.dom0Token });
    const a = await dom0.call('domctl.createdomain', { name: 'ping', kind: 'service' });
    const b = await dom0.call('domctl.createdomain', { name: 'pong', kind: 'service' });
    const me = await HypervisorConnection.connect({ runDir: tmpDir, domid: a.domid, token: a.token });
    const evtchn = Evtchn.of(me);
    const myPort = await evtchn.allocUnbound(b.domid);
    const child = fork(PEER, [JSON.stringify({ role: 'pingpong', runDir: tmpDir, domid: b.domid, token: b.token, peer: a.domid, port: myPort })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise((r) => child.once('message', r));
    const raw = await startRawEcho(ipcEndpoint(`${runDirLayout(tmpDir).root}/raw-echo.sock`));
    const relay = await startRawRelay(ipcEndpoint(`${runDirLayout(tmpDir).root}/raw-relay.sock`));
    const toB = Buffer.from('b');
    const payload = Buffer.alloc(40);
    let wake: (() => void) | null = null;
    evtchn.onEvent(myPort, () => wake?.());
    const ping = () =>
      new Promise<void>((r) => {
        wake = r;
        evtchn.notify(myPort);
      });
    // CPU of every process on the path (this one included), summed over the rounds.
    const cpu = { raw: 0, relay: 0, ev: 0 };
    const time = async (n: number, once: () => Promise<unknown>, pids: number[] = [], account?: keyof typeof cpu) => {
      const meter = startCpuMeter(pids);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await once();
      const us = Number(process.hrtime.bigint() - t0) / 1e3 / n;
      if (account) cpu[account] += meter.stop() / (n * ROUNDS);
      return us;
    };
    const rawPids = [raw.child.pid!];
    const relayPids = relay.children.map((c) => c.pid!);
    const evPids = [hyp.child.pid!, child.pid!];
    try {
      await new Promise((r) => setTimeout(r, 50)); // the bind's own pending event goes by
      progress('warming up');
      await time(300, () => echoOnce(raw.dealer, payload));
      await time(300, () => relayOnce(relay.a, toB, payload));
      await time(300, ping);
      const rawUs: number[] = [];
      const relayUs: number[] = [];
      const evUs: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        progress(`round ${r + 1}/${ROUNDS}`);
        rawUs.push(await time(PER_ROUND, () => echoOnce(raw.dealer, payload), rawPids, 'raw'));
        relayUs.push(await time(PER_ROUND, () => relayOnce(relay.a, toB, payload), relayPids, 'relay'));
        evUs.push(await time(PER_ROUND, ping, evPids, 'ev'));
      }
      return [
        result('event-channel ping-pong round trip (median of rounds)', median(evUs), 'µs', median(rawUs), '<= 1.5x raw ZeroMQ round trip'),
        result('  the same vs raw ZeroMQ relay via a broker process (4 hops)', median(evUs), 'µs', median(relayUs), null),
        result('  raw relay (4 hops) vs raw round trip (2 hops)', median(relayUs), 'µs', median(rawUs), null),
        result('CPU per round trip, all processes on the path: event channel vs raw relay (4 hops)', cpu.ev, 'µs', cpu.relay, null),
        result('CPU per round trip, all processes on the path: raw relay (4 hops) vs raw round trip (2 hops)', cpu.relay, 'µs', cpu.raw, null),
      ];
    } finally {
      raw.stop();
      relay.stop();
      child.kill('SIGKILL');
      await me.close();
      await dom0.close();
      await hyp.stop();
    }
  },
};
