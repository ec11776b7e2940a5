/**
 * Making xenstored restartable (Xoar's point: keep xenstore's state apart
 * from its logic).  Everything that must survive `kill -9` lives under
 * $RUN_DIR/xenstored/:
 *
 *   snapshot.json   the whole state at journal sequence N (written to a
 *                   temporary file and renamed into place, so it is always
 *                   whole)
 *   journal.log     one JSON line per served request that changed state,
 *                   each with its sequence number > N
 *
 * A request's changes are written with one write(2) before its reply is
 * sent, so an acknowledged write is in the kernel's page cache, and a
 * killed process cannot lose it (a power cut could: there is no fsync,
 * as C xenstored keeps its store in memory and loses it all on a crash).
 * A line torn by the kill belongs to a request that was never acknowledged
 * and is ignored.  Replay applies the snapshot, then the lines after it.
 */
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { XS_INTRODUCE_DOMAIN, XS_RELEASE_DOMAIN } from '@xenbox/abi';
import type { DomainInfo } from './domains.js';
import { parentOf, ROOT } from './path.js';
import { formatPerms, parsePerms } from './permissions.js';
import type { Quotas } from './quota.js';
import type { JournalRecord } from './store.js';
import type { StateChange, Xenstored } from './xenstored.js';

type SavedRecord =
  | { op: 'create'; path: string; value: string; perms: string[] }
  | { op: 'value'; path: string; value: string }
  | { op: 'perms'; path: string; perms: string[] }
  | { op: 'remove'; path: string }
  | { op: 'domain'; domain: DomainInfo | { domid: number; gone: true } }
  | { op: 'state'; change: StateChange };

interface Snapshot {
  version: 1;
  seq: number;
  /** Every node, parents before children, siblings in order: [path, value, perms]. */
  nodes: Array<[string, string, string[]]>;
  domains: DomainInfo[];
  quotas: ReturnType<Quotas['snapshot']>;
}

/** Rewrite the snapshot once the journal holds this many lines. */
const COMPACT_AFTER_LINES = 100_000;

export class Persistence {
  private fd = -1;
  private pending: SavedRecord[] = [];
  private seq = 0;
  private lines = 0;
  private flushScheduled = false;
  private readonly snapshotPath: string;
  private readonly journalPath: string;

  constructor(
    private readonly xs: Xenstored,
    dir: string,
  ) {
    this.snapshotPath = join(dir, 'snapshot.json');
    this.journalPath = join(dir, 'journal.log');
  }

  /** Load what a previous xenstored left, then start journaling. Returns how many records were replayed. */
  open(): { restored: boolean; replayed: number } {
    const restored = existsSync(this.snapshotPath) || existsSync(this.journalPath);
    const snapSeq = this.loadSnapshot();
    const replayed = this.replayJournal(snapSeq);
    this.fd = openSync(this.journalPath, 'a', 0o600);
    this.xs.store.journal = (r) => this.record(toSaved(r));
    this.xs.domains.journal = (d) => this.record({ op: 'domain', domain: d });
    this.xs.journal = (c) => this.record({ op: 'state', change: c });
    if (restored) this.compact();
    return { restored, replayed };
  }

  /** Write what the current request changed, before its reply goes out. */
  flush(): void {
    if (this.pending.length === 0 || this.fd < 0) return;
    const line = JSON.stringify({ seq: ++this.seq, recs: this.pending }) + '\n';
    this.pending = [];
    writeSync(this.fd, line);
    if (++this.lines >= COMPACT_AFTER_LINES) this.compact();
  }

  close(): void {
    this.flush();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Snapshot the whole state and empty the journal. */
  compact(): void {
    this.flush();
    const snap: Snapshot = {
      version: 1,
      seq: this.seq,
      nodes: [],
      domains: this.xs.domains.all(),
      quotas: this.xs.quotas.snapshot(),
    };
    for (const root of [ROOT, XS_INTRODUCE_DOMAIN, XS_RELEASE_DOMAIN]) {
      for (const [path, node] of this.xs.store.walk(root)) snap.nodes.push([path, node.value, formatPerms(node.perms)]);
    }
    const tmp = `${this.snapshotPath}.tmp`;
    writeFileSync(tmp, JSON.stringify(snap), { mode: 0o600 });
    renameSync(tmp, this.snapshotPath);
    if (this.fd >= 0) ftruncateSync(this.fd, 0);
    this.lines = 0;
  }

  private record(r: SavedRecord): void {
    this.pending.push(r);
    // Changes made outside a request (RELEASE's clean-up) still reach the disk promptly.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private loadSnapshot(): number {
    if (!existsSync(this.snapshotPath)) return 0;
    const snap = JSON.parse(readFileSync(this.snapshotPath, 'utf8')) as Snapshot;
    const store = this.xs.store;
    for (const [path, value, perms] of snap.nodes) {
      const p = parsePerms(perms);
      if (store.has(path)) {
        if (store.get(path)!.value !== value) store.setValue(path, value);
        store.setPerms(path, p);
      } else {
        store.create(path, value, p);
      }
    }
    for (const d of snap.domains) this.xs.domains.restore(d);
    this.xs.quotas.restore(snap.quotas);
    this.seq = snap.seq;
    return snap.seq;
  }

  private replayJournal(after: number): number {
    if (!existsSync(this.journalPath)) return 0;
    let n = 0;
    for (const line of readFileSync(this.journalPath, 'utf8').split('\n')) {
      if (!line) continue;
      let entry: { seq: number; recs: SavedRecord[] };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        // A line torn by kill -9: its request was never acknowledged.
        this.xs.log.warn('ignoring a torn journal line');
        continue;
      }
      if (entry.seq <= after) continue;
      for (const r of entry.recs) this.apply(r);
      this.seq = entry.seq;
      n++;
    }
    return n;
  }

  private apply(r: SavedRecord): void {
    const { store } = this.xs;
    switch (r.op) {
      case 'create':
        if (!store.has(r.path) && store.has(parentOf(r.path))) store.create(r.path, r.value, parsePerms(r.perms));
        break;
      case 'value':
        if (store.has(r.path)) store.setValue(r.path, r.value);
        break;
      case 'perms':
        if (store.has(r.path)) store.setPerms(r.path, parsePerms(r.perms));
        break;
      case 'remove':
        if (store.has(r.path) && r.path !== ROOT) store.remove(r.path);
        break;
      case 'domain':
        this.xs.domains.restore(r.domain);
        break;
      case 'state': {
        const c = r.change;
        if (c.kind === 'quota' && c.scope === 'hard') this.xs.quotas.setGlobal(c.name, c.value);
        else if (c.kind === 'quota') this.xs.quotas.setSoft(c.name, c.value);
        else this.xs.quotas.setForDomain(c.domid, c.name, c.value);
        break;
      }
    }
  }
}

function toSaved(r: JournalRecord): SavedRecord {
  switch (r.op) {
    case 'create':
      return { op: 'create', path: r.path, value: r.value, perms: formatPerms(r.perms) };
    case 'perms':
      return { op: 'perms', path: r.path, perms: formatPerms(r.perms) };
    default:
      return r;
  }
}

