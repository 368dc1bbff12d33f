/** Messages between a worker and its probe host (see probe-host.ts). */
import type { ProbeResult } from './parse';

export type HostRequest =
  | { type: 'probe'; id: number; file: string; timeoutMs: number }
  | { type: 'version'; id: number }
  | { type: 'abort'; id: number };

export type HostReply =
  | { id: number; result: ProbeResult | string }
  | { id: number; error: { name: string; message: string; code?: string } };
