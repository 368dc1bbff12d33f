/**
 * One media host process as the pool (pool.ts) sees it: a state with named
 * transitions, the requests it holds, and the mechanics of its process
 * (send, kill, keep or release the worker's event loop).
 *
 *   starting ──ready──▶ ready ◀──release── isolating
 *      │                  │ └────isolate────▶ │
 *      └──refuse──▶ unavailable               │
 *   (any of those) ──drain──▶ draining        │
 *   (any of those, draining too) ──kill──▶ killed ──abandon──▶ abandoned
 *   (any) ──exit──▶ exited
 *
 * - starting: forked, loading its prober; takes nothing yet.
 * - ready: takes probes and pictures.
 * - isolating: holds one suspect (a file in flight when another host crashed) alone, and nothing else.
 * - unavailable: said it cannot load its prober; exits on its own.
 * - draining: the pool is closing; its channel is cut, it stops its work and exits on its own.
 * - killed: SIGKILL sent by the pool; what it held was settled at once, its 'exit' is awaited.
 * - abandoned: killed, yet not exited in time (a call stuck in the kernel): never waited on again.
 * - exited: its process is gone.
 *
 * A transition that does not apply from the current state is refused
 * (returns false) rather than thrown: a host's events (its 'exit', a failed
 * send, a late answer) race each other, and the first one decides.
 */
import { fork, type ChildProcess, type ForkOptions } from 'node:child_process';
import type { HostRequest } from './protocol';

/** Why the pool killed a host: a request ran past its deadline (the others it held are innocent), or the host failed (a send, its spawn). */
export type KillCause = 'deadline' | 'failure';

export type HostState =
  | { name: 'starting' }
  | { name: 'ready' }
  | { name: 'isolating'; suspect: number }
  | { name: 'unavailable' }
  | { name: 'draining' }
  | { name: 'killed'; cause: KillCause }
  | { name: 'abandoned' }
  | { name: 'exited' };

export type HostStateName = HostState['name'];

/** The states each transition may start from. */
const FROM: Record<'ready' | 'refuse' | 'isolate' | 'release' | 'drain' | 'kill' | 'abandon' | 'exit', readonly HostStateName[]> = {
  ready: ['starting'],
  refuse: ['starting'],
  isolate: ['ready'],
  release: ['isolating'],
  drain: ['starting', 'ready', 'isolating', 'unavailable'],
  kill: ['starting', 'ready', 'isolating', 'unavailable', 'draining'],
  abandon: ['killed'],
  exit: ['starting', 'ready', 'isolating', 'unavailable', 'draining', 'killed', 'abandoned'],
};

/** A version() call waiting for its host's answer. */
export interface VersionWaiter {
  resolve: (value: string) => void;
  reject: (error: Error) => void;
}

/** A media host process and what it holds; `R` is the pool's request. */
export class MediaHost<R> {
  readonly child: ChildProcess;
  /** Requests sent to it and not yet settled, by id. */
  readonly inFlight = new Map<number, R>();
  /** version() calls sent to it, by id. */
  readonly versions = new Map<number, VersionWaiter>();
  /** Resolves once its process has exited, or it was abandoned. */
  readonly gone: Promise<void>;
  private current: HostState = { name: 'starting' };
  /** It has been ready once: a host that never was failed to start. */
  private servedOnce = false;
  private abandonTimer: NodeJS.Timeout | null = null;
  private markGone: () => void = () => undefined;

  constructor(file: string, args: readonly string[], options: ForkOptions) {
    this.child = fork(file, [...args], options);
    this.gone = new Promise<void>((resolve) => {
      this.markGone = resolve;
    });
  }

  get state(): HostState {
    return this.current;
  }

  /** Has been ready at some point (whatever it is now). */
  get everReady(): boolean {
    return this.servedOnce;
  }

  /** Takes new requests. */
  get takesWork(): boolean {
    return this.current.name === 'ready';
  }

  /** Ready, or holding a suspect alone: it answers what it is sent. */
  get serving(): boolean {
    return this.current.name === 'ready' || this.current.name === 'isolating';
  }

  /** Its process is on its way out, and its 'exit' is awaited (its handle then keeps the worker's loop alive). */
  get stopping(): boolean {
    return this.current.name === 'unavailable' || this.current.name === 'draining' || this.current.name === 'killed';
  }

  /** Killed, abandoned or exited: what it held has been settled, and its late answers mean nothing. */
  get retired(): boolean {
    return this.current.name === 'killed' || this.current.name === 'abandoned' || this.current.name === 'exited';
  }

  /** The request it holds alone, if any. */
  get isolated(): number | null {
    return this.current.name === 'isolating' ? this.current.suspect : null;
  }

  private to(transition: keyof typeof FROM, next: HostState): boolean {
    if (!FROM[transition].includes(this.current.name)) return false;
    this.current = next;
    return true;
  }

  /** starting → ready: it loaded its prober. */
  ready(): boolean {
    const moved = this.to('ready', { name: 'ready' });
    if (moved) this.servedOnce = true;
    return moved;
  }

  /** starting → unavailable: it cannot load its prober. */
  refuse(): boolean {
    return this.to('refuse', { name: 'unavailable' });
  }

  /** ready → isolating: it takes the suspect `id`, alone. */
  isolate(id: number): boolean {
    return this.to('isolate', { name: 'isolating', suspect: id });
  }

  /** isolating → ready: its suspect has been settled. */
  release(): boolean {
    return this.to('release', { name: 'ready' });
  }

  /** → draining: cuts its channel (it stops its work and exits), or kills it when the channel is gone already. */
  drain(): boolean {
    if (!this.to('drain', { name: 'draining' })) return false;
    // Held until its 'exit', which the pool's close() waits for.
    this.hold();
    if (this.child.connected) this.child.disconnect();
    else this.child.kill('SIGKILL');
    return true;
  }

  /**
   * → killed: SIGKILL. One that has not exited `abandonAfterMs` later is
   * taken for stuck in the kernel: abandoned, and `onAbandon` told.
   */
  kill(cause: KillCause, abandonAfterMs: number, onAbandon: () => void): boolean {
    if (!this.to('kill', { name: 'killed', cause })) return false;
    this.child.kill('SIGKILL');
    this.abandonTimer = setTimeout(() => {
      if (!this.to('abandon', { name: 'abandoned' })) return;
      // It must not keep the worker's process alive.
      this.letGo();
      this.markGone();
      onAbandon();
    }, abandonAfterMs);
    this.abandonTimer.unref();
    return true;
  }

  /** → exited: its process is gone (or never started). */
  exit(): boolean {
    if (!this.to('exit', { name: 'exited' })) return false;
    if (this.abandonTimer !== null) clearTimeout(this.abandonTimer);
    this.markGone();
    return true;
  }

  /** Sends a request; a failed send (the host has just died) calls `onFailure`. */
  send(message: HostRequest, onFailure: () => void): void {
    this.child.send(message, (error) => {
      if (error) onFailure();
    });
  }

  /** Keeps the worker's event loop alive for this host (its process, and its channel while it has one). */
  hold(): void {
    this.child.ref();
    this.child.channel?.ref();
  }

  /** Lets the worker's event loop end whatever this host does. */
  letGo(): void {
    this.child.unref();
    this.child.channel?.unref();
  }
}
