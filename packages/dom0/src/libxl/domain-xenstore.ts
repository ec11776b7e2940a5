/**
 * A domain's place in xenstore, as libxl makes it (tools/libs/light/
 * libxl_create.c, libxl__domain_make) and takes it away on destroy.
 *
 *   /local/domain/<domid>            owner dom0, domain may read  (roperm)
 *     name, domid                    written by the toolstack
 *     device/, control/              roperm: the toolstack writes, the domain reads
 *     data/, drivers/, feature/,     rwperm: the domain's own
 *     attr/, error/, control/shutdown
 *
 * Process domains are also given the secret they prove themselves to
 * xenstored with (docs/xenstored.md, "Authentication of process domains").
 */
import { randomBytes } from 'node:crypto';
import type { DomId } from '@xenbox/abi';
import type { XenstoreClient, XsPerm } from '@xenbox/libxen';

export const domainPath = (domid: DomId) => `/local/domain/${domid}`;

/** libxl's roperm: dom0 owns it, nobody else may do anything, the domain may read. */
const roperm = (domid: DomId): XsPerm[] => [
  { id: 0, perm: 'n' },
  { id: domid, perm: 'r' },
];
/** libxl's rwperm: the domain owns it. */
const rwperm = (domid: DomId): XsPerm[] => [{ id: domid, perm: 'n' }];

const RO_DIRS = ['device', 'control'];
const RW_DIRS = ['data', 'drivers', 'feature', 'attr', 'error', 'control/shutdown'];

/** What the toolstack writes for dom0 itself when the stack starts. */
export async function writeDom0Nodes(xs: XenstoreClient): Promise<void> {
  await xs.transaction(async (t) => {
    await t.write(`${domainPath(0)}/name`, 'Domain-0');
    await t.write(`${domainPath(0)}/domid`, '0');
  });
}

/**
 * Make /local/domain/<domid> for a new domain, introduce it to xenstored and
 * return the secret its process authenticates with.
 */
export async function introduceDomain(xs: XenstoreClient, domid: DomId, name: string): Promise<string> {
  const secret = randomBytes(32).toString('hex');
  await makeDomainDirectory(xs, domid, name);
  await xs.introduce(domid, { secret });
  return secret;
}

/** /local/domain/<domid> with libxl's layout and permissions (no introduction). */
export async function makeDomainDirectory(xs: XenstoreClient, domid: DomId, name: string): Promise<void> {
  const base = domainPath(domid);
  await xs.transaction(async (t) => {
    await t.mkdir(base);
    await t.setPerms(base, roperm(domid));
    await t.write(`${base}/name`, name);
    await t.write(`${base}/domid`, String(domid));
    for (const d of RO_DIRS) {
      await t.mkdir(`${base}/${d}`);
      await t.setPerms(`${base}/${d}`, roperm(domid));
    }
    for (const d of RW_DIRS) {
      await t.mkdir(`${base}/${d}`);
      await t.setPerms(`${base}/${d}`, rwperm(domid));
    }
  });
}

/** Forget a dead domain: RELEASE (fires @releaseDomain) and remove its directories. */
export async function releaseDomain(xs: XenstoreClient, domid: DomId): Promise<void> {
  // xenstored may have let it go already (it releases a domain it sees die): that is done, not an error.
  if (await xs.isDomainIntroduced(domid)) {
    await xs.release(domid).catch((e: { errno?: string }) => {
      if (e.errno !== 'ENOENT') throw e;
    });
  }
  // libxl__destroy_domid: /vm/<uuid> (libxl/domain-rings.ts) goes with the domain.
  const vm = await xs.read(`${domainPath(domid)}/vm`).catch(() => null);
  if (vm && /^\/vm\/[0-9a-f-]{36}$/.test(vm)) await xs.rm(vm).catch(() => undefined);
  await xs.rm(domainPath(domid)).catch((e: { errno?: string }) => {
    if (e.errno !== 'ENOENT') throw e;
  });
}
