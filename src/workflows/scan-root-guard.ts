/**
 * One scan per root at a time, without a check-then-start race: the API
 * starts this guard with update-with-start under a workflow id derived from
 * the root and Temporal's USE_EXISTING conflict policy. Every concurrent start
 * for the root lands on the same guard; the first claim starts the scan as a
 * child, every claim gets that scan's id back.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  ParentClosePolicy,
  setHandler,
  startChild,
  uuid4,
} from '@temporalio/workflow';
import type { ScanClaim, ScanRootGuardInput } from '../scan/types';
import { claimScanUpdate, GUARD_CLOSING, scanRootSearchAttribute } from './definitions';
import { scanLibrary } from './scan-library';

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

  const scanId = `scan-${uuid4()}`;
  const child = await startChild(scanLibrary, {
    workflowId: scanId,
    args: [{ ...input.scan, scanId }],
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
  try {
    await child.result();
  } catch {
    // However the scan ended, the root is free again.
  }
  scanEnded = true;
  await condition(allHandlersFinished);
}
