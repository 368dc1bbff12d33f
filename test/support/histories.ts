/**
 * Recording of scan histories for the replay test: set RECORD_HISTORIES=1 and
 * run the integration tests; each recorded run lands in test/replay/histories
 * as protobuf binary (the JSON reader of this SDK version rejects the JSON the
 * 1.29 server writes, and binary round-trips exactly).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

export const HISTORIES_DIR = path.join(__dirname, '..', 'replay', 'histories');

/** Writes every run of a scan (continue-as-new chains have several) as `<name>-<n>.binpb`. */
export async function recordHistory(client: Client, workflowId: string, name: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  await fs.mkdir(HISTORIES_DIR, { recursive: true });
  const runs: string[] = [];
  for await (const execution of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(execution.runId);
  let n = 0;
  for (const runId of runs.reverse()) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    await fs.writeFile(path.join(HISTORIES_DIR, `${name}-${n}.binpb`), temporal.api.history.v1.History.encode(history).finish());
    n += 1;
  }
}
