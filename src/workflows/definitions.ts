/**
 * Everything a client needs to talk to a running scan, defined once:
 * the progress query and the search attribute that names the root.
 */
import { defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ScanClaim, ScanProgress } from '../model/types';

/** The live state of a scan: phase, counters, rate. Answered from workflow state, never from I/O. */
export const progressQuery = defineQuery<ScanProgress>('progress');

/** Custom search attribute (Keyword) that lets an operator filter scans by root in the Temporal UI. */
export const scanRootSearchAttribute = defineSearchAttributeKey('ScanRoot', 'KEYWORD');

/** The workflow type name, fixed forever: running scans depend on it. */
export const SCAN_WORKFLOW_TYPE = 'scanLibrary';

/** Claims a root for a scan: answers with the scan that is (or now will be) running it. */
export const claimScanUpdate = defineUpdate<ScanClaim>('claimScan');

/** Rejection type of a claim that reaches a guard whose scan has just ended: the caller starts a fresh guard. */
export const GUARD_CLOSING = 'GuardClosing';

/**
 * Pauses a running scan: it launches no new probe batches until resumed, and
 * lets the ones in flight finish. Rejected (validator) with PAUSE_REJECTED and
 * a reason in the message when the scan is already paused or is finishing.
 */
export const pauseScanUpdate = defineUpdate<void>('pauseScan');

/**
 * Pauses (true) or resumes (false) a job whose scan has not started: sent to
 * the root's guard, or to the scheduled run waiting for a slot, which hold the
 * choice and start the scan paused. A signal needs no worker to be accepted.
 */
export const pendingPauseSignal = defineSignal<[boolean]>('pendingPause');

/** Resumes a paused scan where it stopped; rejected with PAUSE_REJECTED when it is not paused. */
export const resumeScanUpdate = defineUpdate<void>('resumeScan');

/** Failure types of a rejected pause or resume: the API maps them onto its 409 codes. */
export const PauseRejection = {
  AlreadyPaused: 'AlreadyPaused',
  NotPaused: 'NotPaused',
  /** The scan is finishing: its probing is over. */
  Finishing: 'Finishing',
  /** The scan started before scans could pause. */
  NotPausable: 'NotPausable',
} as const;

/** The workflow type a scan schedule starts (scheduled-scan.ts), fixed forever. */
export const SCHEDULED_SCAN_WORKFLOW_TYPE = 'scheduledScan';

/** The per-root guard's type name, fixed forever. */
export const GUARD_WORKFLOW_TYPE = 'scanRootGuard';
