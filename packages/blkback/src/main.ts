#!/usr/bin/env node
/**
 * The block driver domain: one process serving every vbd the toolstack puts
 * under /local/domain/<us>/backend/vbd, for any number of guests (Linux's
 * xen-blkback as a domain process; docs/blkback.md).
 *
 * Started by the supervisor as its own domain.  A restart is a new domain
 * with a new domid; devices the toolstack has already pointed at us are
 * served from the watcher's first scan.
 */
import { BackendDeviceWatcher, Evtchn, GrantMapper, bootstrapDomain, runMain } from '@xenbox/libxen';
import { openBlockImage } from './image/block-image.js';
import { CopyBatch } from './copy-batch.js';
import { Vbd, type BlkbackContext } from './vbd.js';
import { publishVbdStats } from './vbd-stats.js';

/** How often the per-vbd counters are logged (only when they moved). */
const STATS_LOG_MS = Number(process.env.XENBOX_BLKBACK_STATS_MS) || 30_000;
/** How often they reach xenstore when they moved: often enough that an incarnation living under a second (chaos runs) still publishes. */
const STATS_PUBLISH_MS = 250;

runMain(async () => {
  const dom = await bootstrapDomain({ name: 'blkback' });
  const xs = await dom.xenstore();
  dom.log.info({ xenstoreName: await xs.read(`/local/domain/${dom.domid}/name`) }, 'connected to xenstored');
  const mapper = new GrantMapper(dom.hv);
  const ctx: BlkbackContext = {
    domid: dom.domid,
    hv: dom.hv,
    xs,
    mapper,
    evtchn: Evtchn.of(dom.hv),
    batch: new CopyBatch(mapper),
    log: dom.log,
    openImage: openBlockImage,
    // Stack config: { "kind": "blkback", "args": { "persistentGrants": true } }
    persistentGrants: dom.args.persistentGrants === true,
  };
  const vbds = new Map<string, Vbd>();
  const watcher = new BackendDeviceWatcher(xs, dom.domid, 'vbd', {
    async added(dev) {
      const vbd = new Vbd(ctx, dev);
      vbds.set(dev.path, vbd);
      vbd.log.info('vbd appeared');
      await vbd.start();
    },
    async removed(dev) {
      const vbd = vbds.get(dev.path);
      vbds.delete(dev.path);
      await vbd?.remove();
    },
    onError(e, dev) {
      dom.log.error({ err: e, vbd: dev?.path }, 'vbd watch handler failed');
    },
  });
  await watcher.start();
  dom.log.info({ persistentGrants: ctx.persistentGrants }, 'serving vbds');
  dom.onShutdown(async () => {
    await watcher.stop();
    await Promise.allSettled([...vbds.values()].map((v) => v.remove()));
  });
  let last = '';
  setInterval(() => {
    const now = JSON.stringify([...vbds.values()].map((v) => [v.path, v.stats]));
    if (now === last && !process.env.XENBOX_BLKBACK_STATS_MS) return;
    last = now;
    for (const v of vbds.values()) v.log.info({ stats: v.stats, ring: v.ringSnapshot(), copyCalls: ctx.batch.calls, copyOps: ctx.batch.opsCopied }, 'vbd stats');
  }, STATS_LOG_MS).unref();
  // Counters for dom0's tools (xl top, xenbox chaos --plot), when they moved.
  const published = new Map<string, string>();
  setInterval(() => {
    for (const v of vbds.values()) {
      const now = JSON.stringify(v.stats);
      if (published.get(v.path) === now) continue;
      published.set(v.path, now);
      publishVbdStats(xs, v.path, v.stats).catch((e: Error) => v.log.warn({ err: e.message }, 'publishing counters failed'));
    }
  }, STATS_PUBLISH_MS).unref();
  dom.ready();
});
