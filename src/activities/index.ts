/**
 * The scan's activities, assembled: discovery (discover-files.ts, with the
 * missing-file check in settle-vanished.ts), probing (probe-batch.ts),
 * pictures (make-thumbnails.ts), the end (finish-scan.ts), and a scheduled
 * run's claim on a scan slot (scan-slots.ts). Everything that touches the
 * file system, ffprobe or the database happens in them.
 *
 * The keys of the object createActivities returns are the activity names
 * the worker registers and workflow histories record: never rename one.
 */
import { createDiscoverFiles } from './discover-files';
import { createFinishScan } from './finish-scan';
import { createMakeThumbnails } from './make-thumbnails';
import { createProbeBatch } from './probe-batch';
import { createScanSlotActivities } from './scan-slots';
import { activityContext, type ActivityDependencies } from './shared';

export type { ActivityDependencies } from './shared';

/** Builds the activities around their dependencies. */
export function createActivities(dependencies: ActivityDependencies) {
  const context = activityContext(dependencies);
  const { awaitScanSlot, releaseClosingGuard } = createScanSlotActivities(context);
  return {
    discoverFiles: createDiscoverFiles(context),
    probeBatch: createProbeBatch(context),
    makeThumbnails: createMakeThumbnails(context),
    finishScan: createFinishScan(context),
    awaitScanSlot,
    releaseClosingGuard,
  };
}
