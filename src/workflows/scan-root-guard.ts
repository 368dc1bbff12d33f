/**
 * One scan per root at a time, without a check-then-start race: the API
 * starts this guard under a workflow id derived from the root, and Temporal
 * lets only one execution of an id run at once. The API chooses the scan's id
 * and puts it in the guard's input and memo, so a start is answered as soon
 * as the server has recorded the guard, whether or not a worker polls; a start
 * that finds the root's guard running answers with the scan id in its memo.
 * The guard starts the scan as a child under that id and holds the root
 * until the scan ends.
 *
 * Guards started by older API versions got no scan id: they choose one and
 * answer claims through `claimScanUpdate` (update-with-start). Both paths stay
 * here, so that their recorded histories replay.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  ParentClosePolicy,
  patched,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  uuid4,
} from '@temporalio/workflow';
import type { ScanClaim, ScanRootGuardInput } from '../model/types';
import { claimScanUpdate, GUARD_CLOSING, pendingPauseSignal, scanRootSearchAttribute } from './definitions';
import { scanLibrary } from './scan-library';

/** Patch id of guards that hold a pause of their pending job (pendingPauseSignal) and start the scan paused. */
export const PENDING_PAUSE_PATCH = 'pending-pause';

/** Holds a root for the lifetime of its scan. */
export async function scanRootGuard(input: ScanRootGuardInput): Promise<void> {
  // Set only once the child has started, so no claim answers with a scan that does not exist yet.
  // eslint-disable-next-line prefer-const
  let jobId: string | undefined;
  let claims = 0;
  let scanEnded = false;
  setHandler(
    claimScanUpdate,
    async (): Promise<ScanClaim> => {
      claims += 1;
      const created = claims === 1;
      await condition(() => jobId !== undefined);
      return { jobId: jobId as string, created };
    },
    {
      validator: () => {
        if (scanEnded) throw ApplicationFailure.nonRetryable('the scan of this root has just ended', GUARD_CLOSING);
      },
    },
  );

  // A pause of the job before its scan starts: held here (and shown in the
  // memo), and the scan starts paused. One arriving after the scan started is
  // the API's to pass on (it sees the scan and pauses it).
  let startPaused = input.scan.startPaused;
  setHandler(pendingPauseSignal, (pause: boolean) => {
    if (jobId !== undefined) return;
    startPaused = pause;
    if (patched(PENDING_PAUSE_PATCH)) upsertMemo({ pauseRequested: pause });
  });

  // A guard started before the API chose scan ids draws one from the
  // workflow's seeded random source, which replay reproduces.
  const scanId = input.scanId ?? `scan-${uuid4()}`;
  // Cancelled or terminated before this (the job was cancelled while pending),
  // startChild throws and the guard ends without starting a scan: the root is free.
  const child = await startChild(scanLibrary, {
    workflowId: scanId,
    args: [{ ...input.scan, scanId, ...(startPaused !== undefined ? { startPaused } : {}) }],
    memo: { ...input.memo },
    typedSearchAttributes: [{ key: scanRootSearchAttribute, value: input.scan.root }],
    staticSummary: `Scan of ${input.scan.root}`.slice(0, 200),
    staticDetails:
      `Root: \`${input.scan.root}\`\n\nRecursive: ${input.scan.recursive}, force: ${input.scan.force}` +
      (input.scan.retryOf ? `\n\nRetry of ${input.scan.retryOf}` : ''),
    // The guard is only a lock: terminating it must not take the scan down.
    parentClosePolicy: ParentClosePolicy.ABANDON,
    ...(input.executionTimeoutMs !== null ? { workflowExecutionTimeout: input.executionTimeoutMs } : {}),
  });
  jobId = scanId;
  // A guard started by the API carries the root as its ScanRoot search
  // attribute while its scan has not started: that is how the jobs list
  // finds pending jobs in the visibility store. The scan itself carries it
  // from now on. Only guards given a scan id carry the attribute, and no
  // history recorded before scan ids has one, so the input itself keeps old
  // histories replaying (no patch marker needed).
  if (input.scanId !== undefined) {
    upsertSearchAttributes([{ key: scanRootSearchAttribute, value: null }]);
  }
  try {
    await child.result();
  } catch {
    // However the scan ended, the root is free again.
  }
  scanEnded = true;
  await condition(allHandlersFinished);
}
