/**
 * The missing-file check at the end of a full scan's discovery: the known
 * videos under the root that the walk did not find are moved to their files'
 * new paths, marked missing, or left alone with a warning that says why.
 */
import path from 'node:path';
import type { Library } from '../library/library';
import type { VanishedVideo } from '../library/types';
import { ErrorType, type DiscoverInput } from '../model/types';
import type { MediaFs } from '../filesystem/media-fs';
import { resolveInside } from '../filesystem/containment';

/** What settleVanished needs: the scan, what its walk saw and could not see. */
export interface SettleOptions {
  input: DiscoverInput;
  realRoot: string;
  /** Paths of the present videos under the root (as the library knew them when the walk began) that the walk did not find. */
  vanished: string[];
  found: number;
  unseen: string[];
  emptyFolders: string[];
  isExcluded: (relativePath: string, isDirectory: boolean) => boolean;
  nextPosition: number;
  signal: AbortSignal;
  media: MediaFs;
}

/**
 * Settles the present videos under the root whose files the walk did not
 * find. Left alone: those of a non-recursive scan's subfolders, those under
 * a folder the walk could not see or that the scan excludes, those under
 * a folder below the root that is empty now (a share mounted there and not
 * any more looks just so), and all of them when the walk found no video
 * file at all (an unmounted disk or a dropped share looks like an empty
 * folder). A warning per such case says so instead.
 * A vanished record whose size and fingerprint match a new file of this
 * scan moves to it (fingerprints of new files are taken only for sizes a
 * vanished record has); the rest are marked missing, never deleted.
 */
export async function settleVanished(library: Library, o: SettleOptions): Promise<{ moved: number; missing: number; warnings: { path: string; error: string }[] }> {
  const { input } = o;
  const under = (file: string, dir: string): boolean => file === dir || file.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
  const underUnseen = (file: string): boolean => o.unseen.some((dir) => under(file, dir));
  const isExcludedPath = (file: string): boolean => {
    const parts = path.relative(input.root, file).split(path.sep);
    for (let i = 1; i < parts.length; i += 1) if (o.isExcluded(parts.slice(0, i).join(path.sep), true)) return true;
    return o.isExcluded(parts.join(path.sep), false);
  };
  const candidates = await library.presentVideos(
    o.vanished.filter((file) => (input.recursive || path.dirname(file) === input.root) && !underUnseen(file) && !isExcludedPath(file)),
  );
  const warnings: { path: string; error: string }[] = [];
  if (candidates.length === 0) return { moved: 0, missing: 0, warnings };
  if (o.found === 0) {
    warnings.push({
      path: input.root,
      error: `${ErrorType.MissingCheckSkipped}: no video file was found under the root, where the library knows ${candidates.length}; nothing was marked missing (is the disk or share mounted?)`,
    });
    return { moved: 0, missing: 0, warnings };
  }
  // A record under a folder that is empty now may still have moved (its file
  // found again elsewhere in this scan, as after a rename that emptied the
  // folder); only what stays unmatched there is held back from missing.
  let moved = 0;
  const unmatched = new Set<VanishedVideo>(candidates);
  const sizes = candidates.filter((video) => video.fingerprint !== null).map((video) => video.size);
  if (sizes.length > 0) {
    for (const candidate of await library.moveCandidates(input.scanId, sizes)) {
      o.signal.throwIfAborted();
      const resolved = await resolveInside(o.realRoot, candidate.path, o.media);
      if (!resolved.ok || !resolved.stat.isFile() || resolved.stat.size !== candidate.size) continue;
      const taken = await o.media.fingerprint(resolved.real).catch(() => null);
      o.signal.throwIfAborted();
      if (taken === null || taken.size !== candidate.size) continue;
      // Copies of one file match each other: prefer the record of the same name (a renamed folder keeps its names).
      const matches = [...unmatched].filter((video) => video.size === candidate.size && video.fingerprint === taken.fingerprint);
      const match = matches.find((video) => path.basename(video.path) === path.basename(candidate.path)) ?? matches[0];
      if (match === undefined) continue;
      if (await library.recordMove(input.scanId, candidate, match)) {
        unmatched.delete(match);
        moved += 1;
      }
    }
    if (moved > 0) await library.renumberProbeIndexes(input.scanId);
  }
  const inEmptyFolder = (video: VanishedVideo): boolean => o.emptyFolders.some((dir) => under(video.path, dir));
  for (const dir of o.emptyFolders) {
    const held = [...unmatched].filter((video) => under(video.path, dir)).length;
    if (held === 0) continue;
    warnings.push({
      path: dir,
      error: `${ErrorType.MissingCheckSkipped}: this folder is empty, where the library knows ${held} videos under it; none was marked missing (is a share mounted here?)`,
    });
  }
  const missing = await library.markMissing(input.scanId, [...unmatched].filter((video) => !inEmptyFolder(video)), o.nextPosition);
  return { moved, missing, warnings };
}
