/**
 * Thumbnails: when a video's picture was made (null: none yet), and why the
 * last attempt made none. The picture itself is a file in THUMBNAIL_DIR named
 * after the video's id; these columns say whether it is there and current.
 */
import type { Kysely, Migration } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDatabase = Kysely<any>;

export const thumbnails: Migration = {
  async up(db: AnyDatabase): Promise<void> {
    await db.schema.alterTable('videos').addColumn('thumbnail_at', 'text').execute();
    await db.schema.alterTable('videos').addColumn('thumbnail_error', 'text').execute();
  },
};
