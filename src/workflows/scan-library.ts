/**
 * The scan workflow: discover, probe in batches through a sliding window
 * (window.ts), make the pictures through the same window, finish with a
 * summary. Deterministic: all I/O happens in activities.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { RetryPolicy } from '@temporalio/common';
import type { createActivities } from '../activities';
import {
  ErrorType,
  MAX_SUMMARY_ERRORS,
  type ProbeBatchResult,
  type ScanCounts,
  type ScanCursor,
  type ScanInput,
  type ScanOutcome,
  type ScanPhase,
  type ScanProgress,
  type ScanResult,
} from '../model/types';
import { PauseRejection, pauseScanUpdate, progressQuery, resumeScanUpdate } from './definitions';
import { runWindow, type WindowPlan } from './window';

type Activities = ReturnType<typeof createActivities>;

/**
 * Batches per run of scans started before the limit travelled in their input
 * (ScanService sets it now, from MAX_BATCHES_PER_RUN). Frozen: those scans'
 * histories replay with it, so it must never change.
 */
const LEGACY_MAX_BATCHES_PER_RUN = 400;

/** Patch id of progress publishing through the memo (see showDetails). */
export const PROGRESS_MEMO_PATCH = 'progress-memo';

/** Patch id of pause and resume: scans started before it neither pause nor publish `paused`. */
export const PAUSE_PATCH = 'pause-resume';

/**
 * Patch id of the thumbnail phase: scans started before it go from probing
 * straight to their finish, as their histories recorded.
 */
export const THUMBNAILS_PATCH = 'thumbnails';

/**
 * Patch id of this round's scan shape: a pause stops the batches in flight
 * (they are cancelled, and launched again on resume, where the library says
 * which of their files remain), a batch's failure cancels its siblings, the
 * picture phase also covers unchanged videos without a picture, and the
 * finish of a timed-out scan cannot be cancelled. Scans started before it
 * replay as they ran.
 */
export const STOPPABLE_BATCHES_PATCH = 'stoppable-batches';

/**
 * Patch id of max_parallel_files: a scan that sets it runs a smaller window
 * and caps each batch's files in flight. Scans without it issue the commands
 * they always did.
 */
export const MAX_PARALLEL_FILES_PATCH = 'max-parallel-files';

/**
 * Patch id of the finish of a completed scan as a local activity: run by the
 * worker within the workflow task that decided it, with no activity task to
 * dispatch and no workflow task after it (what is left of a rescan of an
 * unchanged library once its walk is done). Scans that ended before it, and
 * every other ending, finish as an activity task.
 */
export const LOCAL_FINISH_PATCH = 'local-finish';

/** Heartbeat timeout for activities: they heartbeat at least twice a second, so a dead worker is noticed in seconds. */
const HEARTBEAT_TIMEOUT = '10s';

const RETRY_POLICY: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  maximumAttempts: 20,
  nonRetryableErrorTypes: [ErrorType.InvalidScanRoot],
};

function emptyCounts(): ScanCounts {
  return { discovered: 0, probed: 0, new: 0, updated: 0, skipped: 0, failed: 0, moved: 0, missing: 0 };
}

/**
 * Scans one library root. The result is the summary; the full file list and
 * every error stay in the library database.
 */
export async function scanLibrary(input: ScanInput): Promise<ScanResult> {
  const { discoverFiles, finishScan } = proxyActivities<Activities>({
    startToCloseTimeout: '6h',
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: RETRY_POLICY,
  });
  const { finishScan: finishScanLocally } = proxyLocalActivities<Activities>({
    // The library retries a busy database for up to 30 s; the worker keeps the workflow task alive meanwhile.
    startToCloseTimeout: '2m',
    // As the activity task's: a cancel meanwhile waits for its write, which the cancelled finish then overwrites.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: RETRY_POLICY,
  });
  const { probeBatch } = proxyActivities<Activities>({
    // A backstop only: every file has its own kill timeout and a dead worker is
    // caught by the heartbeat timeout, so size it for the worst case of a batch.
    startToCloseTimeout: input.batchSize * input.probeTimeoutMs + 60_000,
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: RETRY_POLICY,
  });

  const { makeThumbnails } = proxyActivities<Activities>({
    // A backstop only, like probeBatch's: every picture has its own kill
    // timeout, but a batch may wait behind the worker's other batches for its
    // few thumbnail slots (THUMBNAIL_CONCURRENCY), so allow a window's worth.
    startToCloseTimeout: input.window * input.batchSize * input.probeTimeoutMs + 60_000,
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: RETRY_POLICY,
  });

  // max_parallel_files: this root's files in flight across all workers. The
  // window's batches run at once, each on any worker, so the limit is shared
  // among them: at most `window` batches of `perBatch` files each.
  const gentle = input.maxParallelFiles !== undefined && patched(MAX_PARALLEL_FILES_PATCH);
  const window = gentle ? Math.max(1, Math.min(input.window, input.maxParallelFiles as number)) : input.window;
  const perBatch = gentle ? { maxParallelFiles: Math.max(1, Math.floor((input.maxParallelFiles as number) / window)) } : {};

  // From the input, never from a code default: a deploy that changes the
  // default must not change where running scans continue-as-new.
  const maxBatchesPerRun = input.maxBatchesPerRun ?? LEGACY_MAX_BATCHES_PER_RUN;
  const cursor: ScanCursor = input.cursor ?? {
    nextIndex: 0,
    toProbe: -1,
    counts: emptyCounts(),
    errors: [],
    startedAtMs: Date.now(),
    probingStartedAtMs: null,
  };
  let phase: ScanPhase = cursor.toProbe < 0 ? 'discovering' : cursor.thumbnailIndex !== undefined ? 'thumbnails' : 'probing';
  let cancelRequested = false;
  let outcome: ScanOutcome | null = null;
  let finishedThisRun = 0;
  /** Batches (of probes, then of thumbnails) this run started: past maxBatchesPerRun it hands over. */
  let launched = 0;
  // Histories recorded before pausing existed carry no marker: those scans cannot be paused,
  // and publish no `paused` field, so they replay exactly as they ran.
  const pausable = patched(PAUSE_PATCH);
  // A continued run of a paused scan stays paused.
  // A scan paused while its job was pending (input.startPaused) begins paused.
  let paused = cursor.paused ?? (pausable && input.startPaused === true);
  /** Batches running now (probes or pictures); a pause is complete once none is. */
  let running = 0;
  // The shape is decided by a scan's first run and carried by its cursor, so
  // that a scan started before this change keeps its shape across continue-as-new.
  const stoppable = input.cursor === undefined ? patched(STOPPABLE_BATCHES_PATCH) : (input.cursor.stoppable ?? false);
  if (stoppable) cursor.stoppable = true;

  const progress = (): ScanProgress => {
    const counts = cursor.counts;
    const known = cursor.toProbe >= 0;
    // A moved file is done at discovery; a cursor carried over from before moves has no count of them.
    const finished = counts.skipped + counts.probed + (counts.moved ?? 0);
    const weighted = stoppable === true && known;
    // Pictures to make: known once discovery has numbered them (toThumbnail); scans of older shapes count none.
    const pictures = weighted ? (cursor.toThumbnail ?? cursor.toProbe) : 0;
    const picturesDone = weighted ? (cursor.picturesDone ?? 0) : 0;
    // Exactly 1 only once the scan has completed; a cancelled or failed scan stops short of it.
    // Weights (docs/progress.md): each discovered file one unit, each picture to make one unit.
    const total = counts.discovered + pictures;
    const fraction =
      outcome === 'completed' ? 1 : known ? (total === 0 ? 0 : Math.min((finished + picturesDone) / total, 0.999)) : null;
    // Rate and ETA describe the phase under way: files probed while probing, pictures while making them.
    const inPictures = weighted && phase === 'thumbnails';
    const phaseStartMs = inPictures ? (cursor.picturesStartedAtMs ?? null) : cursor.probingStartedAtMs;
    const phaseDone = inPictures ? picturesDone : counts.probed;
    const phaseTotal = inPictures ? pictures : cursor.toProbe;
    const elapsedS = phaseStartMs === null ? 0 : (Date.now() - phaseStartMs) / 1000;
    const ratePerS = elapsedS > 0 ? phaseDone / elapsedS : 0;
    const remaining = known ? Math.max(phaseTotal - phaseDone, 0) : null;
    // Discovery opens no media file, but a pause asked during it completes once the first batches would start.
    const pauseRequested = paused && (running > 0 || phase === 'discovering');
    return {
      phase,
      counts: { ...counts },
      toProbe: known ? cursor.toProbe : null,
      progress: fraction,
      ratePerS: Math.round(ratePerS * 10) / 10,
      etaSeconds: remaining !== null && ratePerS > 0 ? Math.ceil(remaining / ratePerS) : null,
      cancelRequested,
      ...(pausable ? { paused } : {}),
      ...(stoppable ? { pauseRequested } : {}),
      errors: cursor.errors,
    };
  };
  setHandler(progressQuery, progress);

  // Scans started before this change did not publish progress to their memo:
  // the patch marker keeps their histories replaying.
  const publishesProgress = patched(PROGRESS_MEMO_PATCH);

  const showDetails = (): void => {
    const p = progress();
    // The same state the query answers, published at every step so that the
    // API's status reads need only a describe, not a query through a worker.
    if (publishesProgress) upsertMemo({ progress: { ...p, errors: [], at: Date.now() } });
    const percent = p.progress === null ? '' : ` (${Math.floor(p.progress * 100)} %)`;
    setCurrentDetails(
      `**${p.phase}** ${input.root}: ${p.counts.probed + p.counts.skipped}/${p.counts.discovered} files${percent}, ` +
        `${p.counts.new} new, ${p.counts.updated} updated, ${p.counts.skipped} unchanged, ${p.counts.failed} failed, ${p.ratePerS} files/s`,
    );
  };

  const pauseRejection = (wanted: boolean): void => {
    if (!pausable) {
      throw ApplicationFailure.nonRetryable('this scan started before scans could be paused', PauseRejection.NotPausable);
    }
    if (outcome !== null || phase === 'finalizing' || phase === 'done') {
      throw ApplicationFailure.nonRetryable('the scan is finishing', PauseRejection.Finishing);
    }
    if (paused === wanted) {
      throw wanted
        ? ApplicationFailure.nonRetryable('the scan is already paused', PauseRejection.AlreadyPaused)
        : ApplicationFailure.nonRetryable('the scan is not paused', PauseRejection.NotPaused);
    }
  };
  const setPaused = (value: boolean): void => {
    paused = value;
    log.info(value ? 'scan paused' : 'scan resumed', { scanId: input.scanId });
    showDetails();
  };
  setHandler(pauseScanUpdate, () => setPaused(true), { validator: () => pauseRejection(true) });
  setHandler(resumeScanUpdate, () => setPaused(false), { validator: () => pauseRejection(false) });

  const applyBatch = (result: ProbeBatchResult): void => {
    const counts = cursor.counts;
    counts.probed += result.probed;
    counts.new += result.new;
    counts.updated += result.updated;
    counts.failed += result.failed;
    for (const error of result.errors) {
      if (cursor.errors.length >= MAX_SUMMARY_ERRORS) break;
      cursor.errors.push(error);
    }
    finishedThisRun += 1;
    showDetails();
  };

  /**
   * The window over the probes or the pictures, in the shape the scan started
   * with (stoppable: STOPPABLE_BATCHES_PATCH), from where the cursor says.
   */
  const windowOf = <R>(plan: Pick<WindowPlan<R>, 'end' | 'next' | 'advance' | 'start' | 'done'>): Promise<'done' | 'continue'> =>
    runWindow({
      ...plan,
      size: window,
      batchSize: input.batchSize,
      launched: () => {
        launched += 1;
      },
      handOver: () => launched >= maxBatchesPerRun || workflowInfo().continueAsNewSuggested,
      paused: () => paused,
      running: (count) => {
        running = count;
      },
      stoppable: stoppable ? { relaunch: (cursor.relaunch ??= []), changed: showDetails } : undefined,
    });

  /** Probes every index from the cursor on. */
  const probeAll = (): Promise<'done' | 'continue'> =>
    windowOf({
      end: cursor.toProbe,
      next: () => cursor.nextIndex,
      advance: (to) => {
        cursor.nextIndex = to;
      },
      start: (fromIndex, toIndex) => probeBatch({ scanId: input.scanId, fromIndex, toIndex, probeTimeoutMs: input.probeTimeoutMs, ...perBatch }),
      done: applyBatch,
    });

  /**
   * Makes the pictures of the files this scan probed, batch by batch over the
   * same probe indexes, after every probe: the library fills first, pictures
   * follow. The cursor's thumbnailIndex says where a new run goes on. This
   * round's shape also covers unchanged videos without a picture (toThumbnail)
   * and counts the pictures done for the progress.
   */
  const thumbnailAll = (): Promise<'done' | 'continue'> =>
    windowOf({
      end: stoppable ? (cursor.toThumbnail ?? cursor.toProbe) : cursor.toProbe,
      next: () => cursor.thumbnailIndex ?? 0,
      advance: (to) => {
        cursor.thumbnailIndex = to;
      },
      start: (fromIndex, toIndex) => makeThumbnails({ scanId: input.scanId, fromIndex, toIndex, timeoutMs: input.probeTimeoutMs, ...perBatch }),
      done: (result) => {
        cursor.counts.thumbnails = (cursor.counts.thumbnails ?? 0) + result.made;
        if (stoppable) cursor.picturesDone = (cursor.picturesDone ?? 0) + result.made + result.failed;
        finishedThisRun += 1;
        showDetails();
      },
    });

  const run = async (): Promise<'done' | 'continue'> => {
    if (cursor.toProbe < 0) {
      showDetails();
      const discovered = await discoverFiles({
        scanId: input.scanId,
        root: input.root,
        recursive: input.recursive,
        force: input.force,
        extensions: input.extensions,
        retryOf: input.retryOf,
        exclude: input.exclude,
        settleSeconds: input.settleSeconds,
        thumbnails: input.thumbnails,
      });
      cursor.toProbe = discovered.toProbe;
      cursor.counts.moved = discovered.moved ?? 0;
      cursor.counts.missing = discovered.missing ?? 0;
      cursor.counts.discovered = discovered.discovered;
      cursor.counts.skipped = discovered.skipped;
      // Files that failed at discovery count as examined and failed.
      cursor.counts.probed += discovered.failed ?? 0;
      cursor.counts.failed += discovered.failed ?? 0;
      cursor.probingStartedAtMs = Date.now();
      // The picture phase covers unchanged videos without a picture too (this round's shape only).
      if (stoppable) cursor.toThumbnail = discovered.toThumbnail ?? discovered.toProbe;
      log.info('discovery finished', { scanId: input.scanId, ...discovered });
    }
    if (cursor.thumbnailIndex === undefined) {
      phase = 'probing';
      showDetails();
      if ((await probeAll()) === 'continue') return 'continue';
    }
    // Histories recorded before thumbnails went from the last probe to the finish.
    if (!patched(THUMBNAILS_PATCH)) return 'done';
    cursor.thumbnailIndex ??= 0;
    cursor.counts.thumbnails ??= 0;
    if (stoppable) cursor.picturesStartedAtMs ??= Date.now();
    phase = 'thumbnails';
    showDetails();
    return thumbnailAll();
  };

  const finish = async (end: ScanOutcome, error: string | null): Promise<ScanResult> => {
    phase = 'finalizing';
    const finishing = end === 'completed' && patched(LOCAL_FINISH_PATCH) ? finishScanLocally : finishScan;
    const summary = await finishing({ scanId: input.scanId, outcome: end, error });
    cursor.counts = summary.counts;
    cursor.errors = summary.errors;
    outcome = end;
    phase = 'done';
    showDetails();
    return {
      scanned: summary.counts.probed + summary.counts.skipped,
      new: summary.counts.new,
      updated: summary.counts.updated,
      skipped: summary.counts.skipped,
      errors: summary.errors,
    };
  };

  const body = new CancellationScope();
  let timedOut = false;
  const deadlineTimer = new CancellationScope();
  if (input.scanTimeoutMs !== null) {
    const remainingMs = Math.max(cursor.startedAtMs + input.scanTimeoutMs - Date.now(), 1);
    deadlineTimer
      .run(() => sleep(remainingMs))
      .then(
        () => {
          timedOut = true;
          body.cancel();
        },
        () => undefined,
      );
  }

  try {
    const next = await body.run(run);
    deadlineTimer.cancel();
    if (next === 'done') return await finish('completed', null);
  } catch (error) {
    deadlineTimer.cancel();
    if (timedOut) {
      // A cancel arriving now must not stop the finish that records the timeout (this round's shape).
      if (stoppable) await CancellationScope.nonCancellable(() => finish('timeout', 'scan exceeded its time limit'));
      else await finish('timeout', 'scan exceeded its time limit');
      throw ApplicationFailure.nonRetryable(
        `scan exceeded its time limit of ${input.scanTimeoutMs} ms`,
        ErrorType.ScanTimeout,
      );
    }
    if (isCancellation(error)) {
      cancelRequested = true;
      await CancellationScope.nonCancellable(() => finish('cancelled', null));
      throw error;
    }
    // An activity's failure reads only "Activity task failed": its cause says why (a root outside SCAN_ROOTS, …).
    const cause = error instanceof ActivityFailure && error.cause !== undefined ? error.cause : error;
    const message = cause instanceof Error ? cause.message : String(cause);
    await CancellationScope.nonCancellable(() => finish('failed', message));
    throw ApplicationFailure.nonRetryable(`scan failed: ${message}`, 'ScanFailed');
  }
  // Outside the try: continue-as-new works by throwing, and must not be taken for a failure.
  log.info('continuing as new', { scanId: input.scanId, nextIndex: cursor.nextIndex, batches: finishedThisRun });
  return await continueAsNew<typeof scanLibrary>({ ...input, cursor: pausable ? { ...cursor, paused } : cursor });
}
