/**
 * The walk's listings and stats on a thread of their own, called
 * synchronously there, with the calling thread watching the deadline.
 *
 * Why: on a local disk an lstat takes a few microseconds, and sending each
 * one through libuv's thread pool (media-fs.ts) costs more than the call;
 * synchronous calls on the event loop are no option on a share that may
 * hang. Here the walk asks for the next folders' listings several at a time,
 * ahead of their turn and shared between two threads (walk.ts, LISTERS), and
 * gets with them the stats of their files named like videos: the threads
 * work while the walk handles what it was given, and a local walk runs as
 * fast as synchronous calls on the event loop, or faster (bench/walk.ts
 * times the ways side by side).
 *
 * A thread stuck on a share past FS_CALL_TIMEOUT is abandoned: it is told to
 * end (it does when the kernel lets its call go), counted
 * (scanner_walk_threads_abandoned_total), and never used again; the walk
 * goes on through media-fs.ts's bounded calls. The calling thread never waits
 * on it.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Counter } from 'prom-client';
import { registry } from '../metrics';
import { fsTimeoutError } from './media-fs';

/** What an entry of a listing is (as the listing says, links not followed). */
export const enum EntryKind {
  Other = 0,
  File = 1,
  Directory = 2,
  Link = 3,
}

/** An entry of a listing: its name as bytes (a name that is not UTF-8 must be seen, not mangled) and its kind. */
export interface ListedEntry {
  name: Buffer;
  kind: EntryKind;
  /** Its lstat taken with the listing (a file named like a video), or that call's error. */
  stat?: FileFacts | NodeJS.ErrnoException;
}

/** A folder listed by the thread: where it really is, and its entries (none when it lies outside the root: not listed). */
export interface Listing {
  real: string;
  /** True when the folder's real path lies outside the root: it was not listed. */
  outside: boolean;
  entries: ListedEntry[];
}

/** What the walk needs of a file's lstat. */
export interface FileFacts {
  isFile(): boolean;
  isSymbolicLink(): boolean;
  size: number;
  mtimeMs: number;
}

class Facts implements FileFacts {
  constructor(
    private readonly kind: number,
    readonly size: number,
    readonly mtimeMs: number,
  ) {}

  isFile(): boolean {
    return this.kind === EntryKind.File;
  }

  isSymbolicLink(): boolean {
    return this.kind === EntryKind.Link;
  }
}

/** Walk threads abandoned while stuck in a call past FS_CALL_TIMEOUT. */
const abandonedThreads = new Counter({
  name: 'scanner_walk_threads_abandoned_total',
  help: 'Walk threads abandoned while stuck in a filesystem call past FS_CALL_TIMEOUT (a share that stopped answering)',
  registers: [registry],
});

let abandonedCount = 0;

/** Walk threads abandoned by this process so far. */
export function walkThreadsAbandoned(): number {
  return abandonedCount;
}

/**
 * The thread's code: plain JavaScript, so that it runs the same from the
 * sources (tests) and from dist/. A stat answer is packed in a Float64Array
 * (kind, size, mtimeMs per file) and a listing's names in one buffer, so that
 * a message costs the same for 5 files or 500. Stats are sent as they come
 * when they are slow (a share), so that a thread stuck later in a batch has
 * delivered the files before.
 */
const THREAD_CODE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const SLICE_MS = 20;
const kindOf = (d) => (d.isFile() ? 1 : d.isDirectory() ? 2 : d.isSymbolicLink() ? 3 : 0);
const failure = (e) => ({ code: e && e.code, message: String(e && e.message) });
// One file's lstat into facts (kind, size, mtime) at i, or its error.
const lstatInto = (facts, errors, i, file) => {
  try {
    const s = fs.lstatSync(file);
    facts[3 * i] = s.isFile() ? 1 : s.isDirectory() ? 2 : s.isSymbolicLink() ? 3 : 0;
    facts[3 * i + 1] = s.size;
    facts[3 * i + 2] = s.mtimeMs;
  } catch (e) {
    facts[3 * i] = -1;
    errors.push([i, failure(e)]);
  }
};
const inside = (root, real) => real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
// Lists one folder: its real path, the root check, its entries.
const listOne = (dir, resolve, root) => {
  let real = dir;
  try {
    if (resolve) real = fs.realpathSync.native(dir);
    if (!inside(root, real)) return [{ real, outside: true }, null];
    const entries = fs.readdirSync(real, { encoding: 'buffer', withFileTypes: true });
    let bytes = 0;
    for (const e of entries) bytes += e.name.length;
    const names = new Uint8Array(bytes);
    const ends = new Uint32Array(entries.length);
    const kinds = new Uint8Array(entries.length);
    let at = 0;
    entries.forEach((e, i) => {
      names.set(e.name, at);
      at += e.name.length;
      ends[i] = at;
      kinds[i] = kindOf(e);
    });
    return [{ real, names, ends, kinds }, entries];
  } catch (e) {
    return [{ error: failure(e) }, null];
  }
};
parentPort.on('message', (m) => {
  if (m.op === 'list') {
    // Several folders in one message: a message costs more than a folder's
    // listing. Their listings are sent first, then the stats of their files
    // named like videos (regular, a UTF-8 name), taken while they are quick:
    // a thread stuck on a file's stat has delivered its folder's listing, and
    // the walk stats the rest itself, a round at a time.
    let last = performance.now();
    const progress = () => {
      const now = performance.now();
      if (now - last > 5) {
        parentPort.postMessage({ id: m.id, progress: true });
        last = now;
      }
    };
    const listed = m.dirs.map((dir) => {
      progress();
      return listOne(dir, m.resolve, m.root);
    });
    parentPort.postMessage({ id: m.id, listings: listed.map(([listing]) => listing) });
    const stats = listed.map(([listing, entries]) => {
      if (entries === null || !m.exts) return null;
      const started = performance.now();
      const facts = new Float64Array(entries.length * 3).fill(-2);
      const errors = [];
      const real = listing.real;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i];
        if (!e.isFile()) continue;
        const name = e.name.toString('utf8');
        if (!m.exts.includes(path.extname(name).toLowerCase()) || !Buffer.from(name, 'utf8').equals(e.name)) continue;
        if (performance.now() - started > SLICE_MS) break;
        progress();
        // path.join without its normalising pass: a listed name in a real (normalised) path.
        lstatInto(facts, errors, i, real.endsWith(path.sep) ? real + name : real + path.sep + name);
      }
      return { facts, errors };
    });
    parentPort.postMessage({ id: m.id, stats });
    return;
  }
  const files = m.files;
  let from = 0;
  let facts = new Float64Array(files.length * 3);
  let errors = [];
  let last = performance.now();
  for (let i = 0; i < files.length; i++) {
    lstatInto(facts, errors, i, files[i]);
    const now = performance.now();
    if (i + 1 < files.length && now - last > SLICE_MS) {
      const part = facts.slice(3 * from, 3 * (i + 1));
      parentPort.postMessage({ id: m.id, from, facts: part, errors, partial: true }, [part.buffer]);
      from = i + 1;
      errors = [];
      last = now;
    }
  }
  const part = facts.slice(3 * from);
  parentPort.postMessage({ id: m.id, from, facts: part, errors, partial: false }, [part.buffer]);
});
`;

/** One folder of a list answer. */
interface FolderAnswer {
  real?: string;
  outside?: boolean;
  names?: Uint8Array;
  ends?: Uint32Array;
  kinds?: Uint8Array;
  error?: { code?: string; message: string };
}

interface ListAnswer {
  id: number;
  /** Still at work (its stats are slow): the watchdog starts again. */
  progress?: true;
  /** First the folders' listings… */
  listings?: FolderAnswer[];
  /** … then the stats of their files named like videos (null: none taken). */
  stats?: ({ facts: Float64Array; errors: [number, { code?: string; message: string }][] } | null)[];
}

interface StatAnswer {
  id: number;
  from: number;
  facts: Float64Array;
  errors: [number, { code?: string; message: string }][];
  partial: boolean;
}

type Answer = ListAnswer | StatAnswer;

function asError(failure: { code?: string; message: string }): NodeJS.ErrnoException {
  return Object.assign(new Error(failure.message), failure.code === undefined ? {} : { code: failure.code });
}

/** A folder of a list answer as the walk sees it, or the error of its calls. */
function listingOf(folder: FolderAnswer): Listing | NodeJS.ErrnoException {
  if (folder.error !== undefined) return asError(folder.error);
  const real = folder.real as string;
  if (folder.outside === true) return { real, outside: true, entries: [] };
  const bytes = folder.names as Uint8Array;
  const names = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ends = folder.ends as Uint32Array;
  const kinds = folder.kinds as Uint8Array;
  const entries: ListedEntry[] = new Array<ListedEntry>(ends.length);
  let at = 0;
  for (let i = 0; i < ends.length; i += 1) {
    const end = ends[i] as number;
    entries[i] = { name: names.subarray(at, end), kind: kinds[i] as EntryKind };
    at = end;
  }
  return { real, outside: false, entries };
}

/** The stats taken with a listing, on its entries. */
function addStats(listing: Listing, facts: Float64Array, errors: [number, { code?: string; message: string }][]): void {
  listing.entries.forEach((entry, i) => {
    const kind = facts[3 * i] as number;
    if (kind >= 0) entry.stat = new Facts(kind, facts[3 * i + 1] as number, facts[3 * i + 2] as number);
  });
  for (const [index, failure] of errors) {
    const entry = listing.entries[index];
    if (entry !== undefined) entry.stat = asError(failure);
  }
}

/** A thread's answer to one request, given as it comes (stats may come in parts); true once the request is over. */
type Receiver = (answer: Answer | null) => boolean;

/** The error a request rejects with when its thread was abandoned (past the deadline): the walk goes on without it. */
export class WalkThreadStuck extends Error {
  /** For stats: the answers received before the thread got stuck (undefined: not answered). */
  constructor(
    message: string,
    readonly answered: (FileFacts | NodeJS.ErrnoException | undefined)[] = [],
  ) {
    super(message);
    this.name = 'WalkThreadStuck';
  }
}

/**
 * A walk thread, lent to one walk at a time (see borrowWalkThread). Its
 * requests are answered in order; several may be asked at once (the next
 * folder's listing behind a folder's stats), so that the thread lists while
 * the walk handles what it was given.
 */
export class WalkThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly receivers = new Map<number, Receiver>();
  private lent = true;
  private stuck = false;
  /** Fires when the thread, asked something, has delivered nothing for a whole deadline. */
  private watchdog: NodeJS.Timeout | null = null;
  private deadlineMs = 0;

  constructor() {
    this.worker = new Worker(THREAD_CODE, { eval: true, name: 'walk' });
    this.worker.on('message', (answer: Answer) => {
      const receive = this.receivers.get(answer.id);
      if (receive !== undefined && receive(answer)) this.receivers.delete(answer.id);
      this.watch();
      this.settled();
    });
    // A thread that failed (it should not: every call is caught) answers nothing more.
    this.worker.on('error', () => this.abandon(false));
  }

  /** False once abandoned: the walk goes on through the thread pool. */
  get usable(): boolean {
    return !this.stuck;
  }

  /**
   * For each of `dirs`: its real path (resolved when `resolve`, else as
   * given) and, when that lies inside `realRoot`, its listing, with the
   * lstat of the regular files named with one of `exts` as far as they are
   * quick (20 ms a folder; the rest the walk stats itself); or the error of
   * its calls. Rejects with WalkThreadStuck when the thread delivers nothing
   * for `timeoutMs`, or the signal's reason.
   */
  listMany(dirs: readonly string[], resolve: boolean, realRoot: string, exts: readonly string[] | null, timeoutMs: number, signal?: AbortSignal): Promise<(Listing | NodeJS.ErrnoException)[]> {
    let listings: (Listing | NodeJS.ErrnoException)[] | null = null;
    return this.request(
      { op: 'list', dirs, resolve, root: realRoot, exts },
      `listing ${dirs[0] ?? ''}${dirs.length > 1 ? ` and ${dirs.length - 1} more` : ''}`,
      timeoutMs,
      signal,
      (answer, done) => {
        const list = answer as ListAnswer;
        if (list.listings !== undefined) listings = list.listings.map(listingOf);
        if (list.stats === undefined) return false;
        const all = listings ?? [];
        list.stats.forEach((stats, i) => {
          const listing = all[i];
          if (stats !== null && listing !== undefined && !(listing instanceof Error)) addStats(listing, stats.facts, stats.errors);
        });
        return done.resolve(all);
      },
      undefined,
      // Stuck on a file's stat, after the listings were sent: they stand, the walk stats their files itself.
      () => listings ?? undefined,
    );
  }

  /** listMany of one folder. */
  async list(dir: string, resolve: boolean, realRoot: string, exts: readonly string[] | null, timeoutMs: number, signal?: AbortSignal): Promise<Listing> {
    const [listing] = await this.listMany([dir], resolve, realRoot, exts, timeoutMs, signal);
    if (listing === undefined || listing instanceof Error) throw listing ?? new Error(`no listing of ${dir}`);
    return listing;
  }

  /**
   * lstat of each file, in order: its facts or its error. A thread that
   * delivers nothing for `timeoutMs` is abandoned, and the call rejects with
   * WalkThreadStuck carrying what was answered before.
   */
  lstatMany(files: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<(FileFacts | NodeJS.ErrnoException)[]> {
    const results: (FileFacts | NodeJS.ErrnoException | undefined)[] = new Array<FileFacts | NodeJS.ErrnoException | undefined>(files.length);
    return this.request(
      { op: 'lstat', files },
      `lstat of ${files.length} file(s) in ${path.dirname(files[0] ?? '.')}`,
      timeoutMs,
      signal,
      (answer, done) => {
        const { from, facts, errors, partial } = answer as StatAnswer;
        for (let i = 0; 3 * i < facts.length; i += 1) {
          const kind = facts[3 * i] as number;
          if (kind >= 0) results[from + i] = new Facts(kind, facts[3 * i + 1] as number, facts[3 * i + 2] as number);
        }
        for (const [index, failure] of errors) results[index] = asError(failure);
        if (partial) return false;
        return done.resolve(results as (FileFacts | NodeJS.ErrnoException)[]);
      },
      () => results,
    );
  }

  /** Given back by its walk: kept for the next one once its requests are answered, unless stuck. */
  giveBack(): void {
    this.lent = false;
    this.worker.unref();
    this.settled();
  }

  /** Lent again from the idle ones. */
  lend(): void {
    this.lent = true;
    this.worker.ref();
  }

  private settled(): void {
    if (this.lent || this.stuck || this.receivers.size > 0) return;
    if (idle.length < MAX_IDLE_THREADS) idle.push(this);
    else void this.worker.terminate();
  }

  /** (Re)starts the watchdog while something is asked, from now. */
  private watch(): void {
    if (this.watchdog !== null) clearTimeout(this.watchdog);
    this.watchdog = null;
    if (this.receivers.size === 0 || this.stuck) return;
    this.watchdog = setTimeout(() => this.abandon(true), this.deadlineMs);
    // The lent thread keeps the process alive while it works, not the watch over a walk given up.
    this.watchdog.unref();
  }

  private abandon(count: boolean): void {
    if (this.stuck) return;
    this.stuck = true;
    if (this.watchdog !== null) clearTimeout(this.watchdog);
    if (count) {
      abandonedCount += 1;
      abandonedThreads.inc();
    }
    // Told to end: it does once the kernel lets its call go. Never awaited.
    this.worker.unref();
    this.worker.terminate().catch(() => undefined);
    for (const receive of this.receivers.values()) receive(null);
    this.receivers.clear();
  }

  private request<T>(
    message: object,
    what: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    onAnswer: (answer: Answer, done: { resolve: (value: T) => true; reject: (error: Error) => true }) => boolean,
    answeredSoFar?: () => (FileFacts | NodeJS.ErrnoException | undefined)[],
    salvage?: () => T | undefined,
  ): Promise<T> {
    if (this.stuck) return Promise.reject(new WalkThreadStuck(`${what}: the walk thread was abandoned`, answeredSoFar?.() ?? []));
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const id = this.nextId;
    this.nextId += 1;
    return new Promise<T>((resolve, reject) => {
      // The caller is told once (answer, error, cancel or abandonment); after
      // a cancel the thread's answer is still awaited (and dropped), under
      // the watchdog, before the thread serves another walk.
      let told = false;
      const tell = (settle: () => void): true => {
        if (!told) {
          told = true;
          signal?.removeEventListener('abort', onAbort);
          settle();
        }
        return true;
      };
      const onAbort = (): void => {
        tell(() => reject(signal?.reason as Error));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.receivers.set(id, (answer) => {
        if (answer === null) {
          const saved = salvage?.();
          if (saved !== undefined) return tell(() => resolve(saved));
          const stuck = new WalkThreadStuck(`${fsTimeoutError(what, timeoutMs).message}; the walk thread was abandoned`, answeredSoFar?.() ?? []);
          return tell(() => reject(stuck));
        }
        return onAnswer(answer, {
          resolve: (value) => tell(() => resolve(value)),
          reject: (error) => tell(() => reject(error)),
        });
      });
      this.deadlineMs = timeoutMs;
      if (this.watchdog === null) this.watch();
      this.worker.postMessage({ id, ...message });
    });
  }
}

/** Idle threads kept for the next walks (two scans walking at once on a worker is common, each on up to two threads; more is rare). */
const MAX_IDLE_THREADS = 4;

const idle: WalkThread[] = [];

/** A walk thread for one walk: an idle one, or a new one. Give it back (giveBack) when the walk ends. */
export function borrowWalkThread(): WalkThread {
  const thread = idle.pop();
  if (thread !== undefined) {
    thread.lend();
    return thread;
  }
  return new WalkThread();
}
