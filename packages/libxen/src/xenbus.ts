/**
 * The xenbus side of a split driver, for domain processes (backends, and
 * frontends written in TypeScript): publish our state, wait for the other
 * end's, and learn which devices the toolstack gave us.  Mirrors Linux's
 * drivers/xen/xenbus/xenbus_client.c (xenbus_switch_state,
 * xenbus_read_driver_state) and xenbus_probe_backend.c (the backend watch).
 */
import {
  XenError,
  backendRoot,
  parseBackendDevicePath,
  parseXenbusState,
  xenbusStateName,
  type DomId,
  type XenbusDeviceKind,
  type XenbusStateValue,
} from '@xenbox/abi';
import type { XenstoreClient } from './xenstore-client.js';

/** xenbus_read_driver_state: a missing or garbled state reads as Unknown. */
export async function readXenbusState(xs: XenstoreClient, dir: string): Promise<XenbusStateValue> {
  return parseXenbusState(await xs.tryRead(`${dir}/state`));
}

/** xenbus_switch_state: write `state` unless it is already there. */
export async function switchXenbusState(xs: XenstoreClient, dir: string, state: XenbusStateValue): Promise<void> {
  if ((await readXenbusState(xs, dir)) === state) return;
  await xs.write(`${dir}/state`, String(state));
}

/**
 * Wait until the state in `dir` satisfies `ok`; returns it.  A state that
 * `fail` accepts (e.g. the other end Closing while we wait to connect) ends
 * the wait with ENODEV, naming both states.
 */
export async function waitForXenbusState(
  xs: XenstoreClient,
  dir: string,
  ok: (s: XenbusStateValue) => boolean,
  opts: { timeoutMs?: number; fail?: (s: XenbusStateValue) => boolean; what?: string } = {},
): Promise<XenbusStateValue> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const w = await xs.watch(`${dir}/state`);
  try {
    for (;;) {
      const s = await readXenbusState(xs, dir);
      if (ok(s)) return s;
      if (opts.fail?.(s)) throw new XenError('ENODEV', `${opts.what ?? dir}: went to ${xenbusStateName(s)} while we waited`);
      const left = deadline - Date.now();
      if (left <= 0) throw new XenError('ETIMEDOUT', `${opts.what ?? dir}: still ${xenbusStateName(s)} after ${opts.timeoutMs ?? 10_000} ms`);
      await w.next(left).catch((e: XenError) => {
        if (e.errno !== 'ETIMEDOUT') throw e;
      });
    }
  } finally {
    await w.unwatch().catch(() => undefined);
  }
}

/** Read `dir/key` as a non-negative integer; absent -> `dflt` (Xen's boolean/feature keys default to 0). */
export async function readXenbusUint(xs: XenstoreClient, dir: string, key: string, dflt?: number): Promise<number> {
  const v = await xs.tryRead(`${dir}/${key}`);
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw new XenError('ENOENT', `${dir}/${key} is missing`);
  }
  if (!/^\s*\d+\s*$/.test(v)) throw new XenError('EINVAL', `${dir}/${key} = "${v}" is not a non-negative integer`);
  return Number(v.trim());
}

/** Write many keys of one directory in one transaction (xenbus_transaction_start + xenbus_printf…). */
export async function writeXenbusKeys(xs: XenstoreClient, dir: string, keys: Record<string, string | number>): Promise<void> {
  await xs.transaction(async (t) => {
    for (const [k, v] of Object.entries(keys)) await t.write(`${dir}/${k}`, String(v));
  });
}

export interface BackendDevice {
  frontend: DomId;
  devid: number;
  /** /local/domain/<us>/backend/<kind>/<frontend>/<devid> */
  path: string;
}

/**
 * Watch /local/domain/<us>/backend/<kind> and report each device directory
 * as it appears and disappears (xenbus_probe_backend's watch on "backend").
 * Call `stop()` to end.  Errors in the callbacks are logged by the caller's
 * `onError`, never thrown into the watch loop.
 */
export class BackendDeviceWatcher {
  private readonly known = new Map<string, BackendDevice>();
  private stopped = false;
  private watch: Awaited<ReturnType<XenstoreClient['watch']>> | null = null;

  constructor(
    private readonly xs: XenstoreClient,
    readonly self: DomId,
    readonly kind: XenbusDeviceKind,
    private readonly handlers: {
      added(dev: BackendDevice): void | Promise<void>;
      removed(dev: BackendDevice): void | Promise<void>;
      onError(e: unknown, dev?: BackendDevice): void;
    },
  ) {}

  get root(): string {
    return backendRoot(this.self, this.kind);
  }

  async start(): Promise<void> {
    this.watch = await this.xs.watch(this.root);
    void this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.watch?.unwatch().catch(() => undefined);
  }

  private async loop(): Promise<void> {
    for await (const ev of this.watch!) {
      if (this.stopped) return;
      try {
        const hit = parseBackendDevicePath(this.root, ev.path);
        if (ev.path === this.root || (hit && hit.rest === '') || !hit) await this.rescan();
      } catch (e) {
        this.handlers.onError(e);
      }
    }
  }

  /** Compare the devices in xenstore with the ones we know. */
  private async rescan(): Promise<void> {
    const present = new Map<string, BackendDevice>();
    for (const fe of await this.xs.directory(this.root).catch(() => [] as string[])) {
      if (!/^\d+$/.test(fe)) continue;
      for (const dev of await this.xs.directory(`${this.root}/${fe}`).catch(() => [] as string[])) {
        if (!/^\d+$/.test(dev)) continue;
        const path = `${this.root}/${fe}/${dev}`;
        present.set(path, { frontend: Number(fe), devid: Number(dev), path });
      }
    }
    for (const [path, dev] of this.known) {
      if (present.has(path)) continue;
      this.known.delete(path);
      await Promise.resolve(this.handlers.removed(dev)).catch((e) => this.handlers.onError(e, dev));
    }
    for (const [path, dev] of present) {
      if (this.known.has(path)) continue;
      // A directory the toolstack is still filling has no state yet; its write fires the watch again.
      if ((await this.xs.tryRead(`${path}/state`)) === undefined) continue;
      this.known.set(path, dev);
      await Promise.resolve(this.handlers.added(dev)).catch((e) => this.handlers.onError(e, dev));
    }
  }
}

