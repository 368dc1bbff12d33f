/**
 * Recording of workflow histories for the replay test: set RECORD_HISTORIES=1
 * and run the integration tests; each recorded run lands in
 * test/replay/histories as protobuf binary (the JSON reader of this SDK
 * version rejects the JSON the 1.29 server writes, and binary round-trips exactly).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

export const HISTORIES_DIR = path.join(__dirname, '..', 'replay', 'histories');

/** True when this run records histories. */
export const recordingHistories = (): boolean => process.env.RECORD_HISTORIES === '1';

/** Writes every run of a scan (continue-as-new chains have several) as `<name>-<n>.binpb`. */
export async function recordHistory(client: Client, workflowId: string, name: string): Promise<void> {
  if (!recordingHistories()) return;
  await fs.mkdir(HISTORIES_DIR, { recursive: true });
  const runs: string[] = [];
  for await (const execution of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(execution.runId);
  let n = 0;
  for (const runId of runs.reverse()) {
    await recordRun(client, workflowId, runId, `${name}-${n}`);
    n += 1;
  }
}

/**
 * Writes one run as `<name>.binpb`: a root's guard reuses its workflow id for
 * every scan of the root, so its runs are recorded one at a time.
 */
export async function recordRun(client: Client, workflowId: string, runId: string, name: string): Promise<void> {
  if (!recordingHistories()) return;
  await fs.mkdir(HISTORIES_DIR, { recursive: true });
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  await fs.writeFile(path.join(HISTORIES_DIR, `${name}.binpb`), temporal.api.history.v1.History.encode(history).finish());
}
