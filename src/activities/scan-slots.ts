/**
 * A scheduled run's claim on a scan slot (MAX_CONCURRENT_SCANS) before it
 * starts its root's guard, and the freeing of a root whose guard is closing.
 */
import { Context } from '@temporalio/activity';
import type { AwaitScanSlotInput } from '../model/types';
import type { ActivityContext } from './shared';

/** How often a scheduled run that waits for a slot asks again. */
const SLOT_RETRY_MS = 1000;

/** The awaitScanSlot and releaseClosingGuard activities, around admission. */
export function createScanSlotActivities({ admission }: ActivityContext) {
  /**
   * Waits until a scheduled run may start its root's guard: while every slot
   * of MAX_CONCURRENT_SCANS is taken, asks again every second (heartbeating,
   * so a cancel of the run ends the wait). The place it takes is reserved
   * for the moments until the guard is visible, as a start through the API's is.
   * With `once`, asks a single time and answers whether it took a place.
   */
  async function awaitScanSlot(input: AwaitScanSlotInput): Promise<boolean> {
    if (admission === undefined) return true;
    const ctx = Context.current();
    for (;;) {
      try {
        await admission.reserve(input.guardId);
        return true;
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'TOO_MANY_SCANS') throw error;
      }
      if (input.once === true) return false;
      ctx.heartbeat();
      await ctx.sleep(SLOT_RETRY_MS);
    }
  }

  /**
   * Frees a root whose guard is closing (its scan has just ended; closing
   * takes a worker): a scheduled run that found it so starts its scan then,
   * instead of nothing. True when the root is free.
   */
  async function releaseClosingGuard(input: AwaitScanSlotInput): Promise<boolean> {
    if (admission === undefined) return false;
    return admission.releaseEndedGuard(input.guardId);
  }

  return { awaitScanSlot, releaseClosingGuard };
}
