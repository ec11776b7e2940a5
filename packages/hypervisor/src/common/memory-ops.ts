/**
 * XENMEM_* (xen/common/memory.c), a process's own loads and stores, foreign
 * access (privcmd) and the mirror ops of DESIGN §4.
 */
import {
  GFN_MAX,
  MEMORY_OP_MAX_EXTENTS,
  XEN_PAGE_SIZE,
  XenError,
  argBytes,
  argDomIdOrSelf,
  argInt,
  argIntArray,
  argObject,
  argOptInt,
  argRecords,
  type Fields,
  type IncreaseReservationReply,
  type MirrorMapOwnReply,
  type MirrorPageData,
  type ReservationReply,
} from '@xenbox/abi';
import type { Hypervisor } from '../hypervisor.js';
import type { Domain } from './domain.js';
import type { HypercallTable } from './hypercall-table.js';
import type { Page } from './page.js';
import { snapshot, type Mirror } from './mirror.js';
import { targetDomain } from './xsm.js';
import { fullFence } from './fence.js';

/** A page of `d` or EFAULT (an access to an unpopulated frame faults). */
function pageOf(op: string, d: Domain, gfn: number): Page {
  const page = d.memory.page(gfn);
  if (!page) throw new XenError('EFAULT', `${op}: d${d.domid} gfn 0x${gfn.toString(16)} is not populated`);
  return page;
}

/** offset/len of an access, which must stay inside one page. */
function span(op: string, a: Fields): { offset: number; len: number } {
  const offset = argOptInt(op, a, 'offset', 0, XEN_PAGE_SIZE) ?? 0;
  const len = argOptInt(op, a, 'len', 0, XEN_PAGE_SIZE) ?? XEN_PAGE_SIZE - offset;
  if (offset + len > XEN_PAGE_SIZE) throw new XenError('EINVAL', `${op}: offset ${offset} + len ${len} crosses the page end`);
  return { offset, len };
}

function writeInto(op: string, page: Page, a: Fields): void {
  const offset = argInt(op, a, 'offset', 0, XEN_PAGE_SIZE);
  const data = argBytes(op, a, 'data', XEN_PAGE_SIZE);
  if (offset + data.length > XEN_PAGE_SIZE) throw new XenError('EINVAL', `${op}: offset ${offset} + ${data.length} bytes crosses the page end`);
  page.write(offset, data);
}

/** Do `fn` for each gfn until one fails: Xen's "nr_done" partial-success convention. */
function eachUntilFailure(gfns: number[], fn: (gfn: number) => void): ReservationReply {
  let done = 0;
  for (const gfn of gfns) {
    try {
      fn(gfn);
    } catch (e) {
      if (done === 0) throw e;
      break;
    }
    done++;
  }
  return { done };
}

/** The holder's copy of a mirror, with the holder checked. */
function ownMirror(op: string, d: Domain, mid: number): Mirror {
  const m = d.mirrors.get(mid);
  if (!m) throw new XenError('ENOENT', `${op}: no mirror ${mid} (unmapped or revoked)`);
  return m;
}

function applyWrites(op: string, d: Domain, writes: Fields[]): void {
  // Check everything first: a flush either lands whole or not at all.
  const checked = writes.map((w) => {
    const m = ownMirror(op, d, argInt(op, w, 'mid', 0, 0xffff_ffff));
    if (!m.writable) throw new XenError('EACCES', `${op}: mirror ${m.mid} is a read-only mapping`);
    const offset = argInt(op, w, 'offset', 0, XEN_PAGE_SIZE);
    const data = argBytes(op, w, 'data', XEN_PAGE_SIZE);
    if (offset + data.length > XEN_PAGE_SIZE) throw new XenError('EINVAL', `${op}: write at ${offset} of ${data.length} bytes crosses the page end`);
    return { m, offset, data };
  });
  for (const { m, offset, data } of checked) {
    const upToDate = m.seen === m.page.version;
    m.page.write(offset, data);
    // The writer's own copy already has what it wrote: don't echo it back.
    if (upToDate) m.seen = m.page.version;
  }
}

export function memoryOps(hv: Hypervisor): HypercallTable {
  const gfnList = (op: string, a: Fields, key = 'gfns') => argIntArray(op, a, key, MEMORY_OP_MAX_EXTENTS, 0, GFN_MAX);
  return {
    'memory.populate_physmap': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'memory.populate_physmap';
        const a = argObject(op, raw);
        const d = targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, a, 'domid'));
        return eachUntilFailure(gfnList(op, a), (gfn) => d.memory.populate(gfn));
      },
    },
    'memory.increase_reservation': {
      priv: 'hook',
      handle(caller, raw): IncreaseReservationReply {
        const op = 'memory.increase_reservation';
        const a = argObject(op, raw);
        const d = targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, a, 'domid'));
        const n = argInt(op, a, 'nr_extents', 0, MEMORY_OP_MAX_EXTENTS);
        const gfns = d.memory.freeGfns(n);
        const { done } = eachUntilFailure(gfns, (gfn) => d.memory.populate(gfn));
        return { gfns: gfns.slice(0, done) };
      },
    },
    'memory.decrease_reservation': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'memory.decrease_reservation';
        const a = argObject(op, raw);
        const d = targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, a, 'domid'));
        return eachUntilFailure(gfnList(op, a), (gfn) => hv.revokeMirrors([...d.memory.release(gfn).mirrors], 'the page was ballooned out'));
      },
    },
    'memory.current_reservation': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'memory.current_reservation';
        return targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, argObject(op, raw), 'domid')).memory.totPages;
      },
    },
    'memory.maximum_reservation': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'memory.maximum_reservation';
        return targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, argObject(op, raw), 'domid')).memory.maxPages;
      },
    },
    'memory.read': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'memory.read';
        const a = argObject(op, raw);
        const page = pageOf(op, caller, argInt(op, a, 'gfn', 0, GFN_MAX));
        const { offset, len } = span(op, a);
        return page.bytes.slice(offset, offset + len);
      },
    },
    'memory.write': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'memory.write';
        const a = argObject(op, raw);
        writeInto(op, pageOf(op, caller, argInt(op, a, 'gfn', 0, GFN_MAX)), a);
        return null;
      },
    },
    'memory.cmpxchg': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'memory.cmpxchg';
        const a = argObject(op, raw);
        const page = pageOf(op, caller, argInt(op, a, 'gfn', 0, GFN_MAX));
        const size = argInt(op, a, 'size', 2, 4);
        if (size !== 2 && size !== 4) throw new XenError('EINVAL', `${op}: size must be 2 or 4`);
        const offset = argInt(op, a, 'offset', 0, XEN_PAGE_SIZE - size);
        if (offset % size !== 0) throw new XenError('EINVAL', `${op}: offset ${offset} is not ${size}-byte aligned`);
        const max = size === 2 ? 0xffff : 0xffff_ffff;
        const expected = argInt(op, a, 'expected', 0, max);
        const value = argInt(op, a, 'value', 0, max);
        const dv = new DataView(page.bytes.buffer, page.bytes.byteOffset + offset, size);
        const old = size === 2 ? dv.getUint16(0, true) : dv.getUint32(0, true);
        if (old === expected) {
          if (size === 2) dv.setUint16(0, value, true);
          else dv.setUint32(0, value, true);
          page.touch();
        }
        return old;
      },
    },
    'foreign.read': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'foreign.read';
        const a = argObject(op, raw);
        const d = targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, a, 'domid'));
        const page = pageOf(op, d, argInt(op, a, 'gfn', 0, GFN_MAX));
        const { offset, len } = span(op, a);
        return page.bytes.slice(offset, offset + len);
      },
    },
    'foreign.write': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'foreign.write';
        const a = argObject(op, raw);
        const d = targetDomain(op, caller, hv.domains, argDomIdOrSelf(op, a, 'domid'));
        writeInto(op, pageOf(op, d, argInt(op, a, 'gfn', 0, GFN_MAX)), a);
        return null;
      },
    },
    'mirror.map_own': {
      priv: 'hook',
      handle(caller, raw, ctx): MirrorMapOwnReply {
        const op = 'mirror.map_own';
        if (!caller.isProcess) throw new XenError('EOPNOTSUPP', `${op}: only process domains keep mirrors`);
        const gfns = gfnList(op, argObject(op, raw));
        const pages = gfns.map((gfn) => ({ gfn, page: pageOf(op, caller, gfn) }));
        return {
          pages: pages.map(({ gfn, page }) => {
            const m = caller.mirrors.add(page, ctx.peerKey, true, 'own', null);
            return { mid: m.mid, gfn, data: snapshot(m) };
          }),
        };
      },
    },
    'mirror.unmap_own': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'mirror.unmap_own';
        for (const mid of argIntArray(op, argObject(op, raw), 'mids', MEMORY_OP_MAX_EXTENTS, 0, 0xffff_ffff)) {
          const m = ownMirror(op, caller, mid);
          if (m.kind !== 'own') throw new XenError('EINVAL', `${op}: mirror ${mid} is a grant mapping; unmap it with gnttab.unmap_grant_ref`);
          caller.mirrors.remove(m);
        }
        return null;
      },
    },
    'mirror.flush': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'mirror.flush';
        applyWrites(op, caller, argRecords(op, argObject(op, raw), 'writes', MEMORY_OP_MAX_EXTENTS));
        return null;
      },
    },
    'mirror.sync': {
      priv: 'hook',
      handle(caller, raw) {
        const op = 'mirror.sync';
        const a = argObject(op, raw);
        if (a.writes !== undefined) applyWrites(op, caller, argRecords(op, a, 'writes', MEMORY_OP_MAX_EXTENTS));
        // ring.h's mb(): our stores into a guest's page land before we read what its vCPU wrote (common/fence.ts).
        fullFence();
        const pages: MirrorPageData[] = [];
        for (const mid of argIntArray(op, a, 'mids', MEMORY_OP_MAX_EXTENTS, 0, 0xffff_ffff)) {
          const m = ownMirror(op, caller, mid);
          if (m.page.volatile || m.seen !== m.page.version) pages.push({ mid, data: snapshot(m) });
        }
        return { pages };
      },
    },
  };
}
