/**
 * `pnpm bench hypercall`: the cost of the hypervisor call path.
 *
 * - round trip of a no-op hypercall (xen_version) from a domain process,
 *   against a raw ZeroMQ DEALER/ROUTER echo round trip between two processes;
 * - calls/s with 64 in flight on one connection, against raw ZeroMQ frames/s
 *   with 64 in flight.
 * Both sides are measured in this run, interleaved, so machine noise hits both.
 */
import { encodeFrame, ipcEndpoint, runDirLayout } from '@xenbox/abi';
import { launchHypervisor } from '@xenbox/hypervisor';
import { HypervisorConnection } from '@xenbox/libxen';
import { median, result, type Benchmark } from './harness.js';
import { echoOnce, echoPipelined, startRawEcho } from './raw-echo.js';

const ROUNDS = 5;
const CALLS_PER_ROUND = 2000;
const PIPELINED_TOTAL = 100_000;
const WINDOW = 64;

async function timeRoundTrips(n: number, once: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await once();
  return Number(process.hrtime.bigint() - t0) / 1e3 / n;
}

/** Keep `window` calls in flight until `total` have completed; calls/s. */
async function pipelinedCalls(hv: HypervisorConnection, total: number, window: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  let issued = 0;
  const lane = async () => {
    while (issued < total) {
      issued++;
      await hv.call('xen_version', {});
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return total / (Number(process.hrtime.bigint() - t0) / 1e9);
}

export const benchmark: Benchmark = {
  name: 'hypercall',
  description: 'no-op hypercall vs raw ZeroMQ round trip; pipelined calls/s',
  async run({ tmpDir, progress }) {
    const hyp = await launchHypervisor(tmpDir);
    const hv = await HypervisorConnection.connect({ runDir: tmpDir, domid: 0, token: hyp.dom0Token });
    const raw = await startRawEcho(ipcEndpoint(`${runDirLayout(tmpDir).root}/raw-echo.sock`));
    // The raw frame is as big as an encoded hypercall, so both move the same bytes.
    const payload = encodeFrame({ id: 1, op: 'xen_version', args: {} });
    try {
      progress('warming up');
      await timeRoundTrips(500, () => echoOnce(raw.dealer, payload));
      await timeRoundTrips(500, () => hv.call('xen_version', {}));
      const rawUs: number[] = [];
      const hcUs: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        progress(`round trip, round ${r + 1}/${ROUNDS}`);
        rawUs.push(await timeRoundTrips(CALLS_PER_ROUND, () => echoOnce(raw.dealer, payload)));
        hcUs.push(await timeRoundTrips(CALLS_PER_ROUND, () => hv.call('xen_version', {})));
      }
      progress('pipelined');
      const rawRate: number[] = [];
      const hcRate: number[] = [];
      for (let r = 0; r < 3; r++) {
        rawRate.push(await echoPipelined(raw.dealer, payload, PIPELINED_TOTAL / 2, WINDOW));
        hcRate.push(await pipelinedCalls(hv, PIPELINED_TOTAL, WINDOW));
      }
      return [
        result('no-op hypercall round trip (median of rounds)', median(hcUs), 'µs', median(rawUs), '<= 1.3x raw ZeroMQ round trip'),
        result(`pipelined hypercalls, ${WINDOW} in flight`, median(hcRate), 'calls/s', median(rawRate), '>= 100000 calls/s'),
      ];
    } finally {
      raw.stop();
      await hv.close();
      await hyp.stop();
    }
  },
};
