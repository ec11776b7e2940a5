/**
 * The hypervisor on tcp:// speaks CURVE and lets in only authorized client
 * keys; the domain token is still required on top.
 */
import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curveKeyPair } from 'zeromq';
import { runDirLayout, XenError } from '@xenbox/abi';
import { launchHypervisor, type LaunchedHypervisor } from '@xenbox/hypervisor';
import { HypervisorConnection, curveFiles } from '@xenbox/libxen';
import { tempRunDir } from './helpers/paths.js';

let hv: LaunchedHypervisor;
let endpoint: string;
let serverKey: string;

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

beforeAll(async () => {
  endpoint = `tcp://127.0.0.1:${await freePort()}`;
  hv = await launchHypervisor(tempRunDir('curve'), ['--tcp', endpoint]);
  serverKey = readFileSync(curveFiles(runDirLayout(hv.runDir).hypervisorDir).publicKey, 'utf8').trim();
});
afterAll(async () => {
  await hv?.stop();
  if (hv) rmSync(hv.runDir, { recursive: true, force: true });
});

const connect = (curve?: { serverKey: string; publicKey: string; secretKey: string }, token = hv.dom0Token) =>
  HypervisorConnection.connect({ endpoint, domid: 0, token, curve, timeoutMs: 1500 });

describe('the hypervisor over tcp', () => {
  it('serves a client whose CURVE key is authorized', async () => {
    const keys = curveKeyPair();
    appendFileSync(curveFiles(runDirLayout(hv.runDir).hypervisorDir).clients, keys.publicKey + '\n');
    const c = await connect({ serverKey, ...keys });
    expect((await c.call('xen_version', {})).implementation).toBe('xenbox');
    await c.close();
  });

  it('never completes the handshake for an unknown key, and says why in its log', async () => {
    const e = await connect({ serverKey, ...curveKeyPair() }).catch((x: unknown) => x);
    expect((e as XenError).errno).toBe('ETIMEDOUT');
    expect(readFileSync(runDirLayout(hv.runDir).logFile('hypervisor'), 'utf8')).toContain('is not in');
  });

  it('refuses a plaintext client', async () => {
    const e = await connect(undefined).catch((x: unknown) => x);
    expect((e as XenError).errno).toBe('ETIMEDOUT');
  });

  it('still wants the domain token from an authorized key', async () => {
    const keys = curveKeyPair();
    appendFileSync(curveFiles(runDirLayout(hv.runDir).hypervisorDir).clients, keys.publicKey + '\n');
    const e = await connect({ serverKey, ...keys }, 'wrong').catch((x: unknown) => x);
    expect((e as XenError).errno).toBe('EACCES');
  });
});
