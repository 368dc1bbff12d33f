import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import { ErrorType } from '../scan/types';

/** Stats in flight at once while walking a folder. */
const STAT_PARALLELISM = 64;

/** A file the walk found: a regular file to probe, or one named like a video that cannot be (with the reason). */
export interface WalkedFile {
  path: string;
  size: number;
  mtimeMs: number;
  /** Set when the file cannot be probed: recorded as failed with this reason. */
  error?: string;
}

/**
 * Walks a tree in a fixed order (names sorted by byte), yielding the files
 * whose extension is in `extensions`.
 *
 * Symlinks are followed only while their target stays inside the root, and
 * every directory is entered once by its real path, so loops are impossible.
 * Names that are not valid UTF-8, FIFOs and devices, and links that dangle or
 * lead out of the root are yielded with the reason they cannot be probed, so
 * that the scan records them instead of losing them. A folder that cannot be
 * listed for want of permission is yielded with the reason too (its own path,
 * so a retry can walk it once it is readable); one that vanished mid-walk is
 * passed over through `onSkip`. Neither is fatal.
 */
export async function* walkVideoFiles(options: {
  root: string;
  recursive: boolean;
  extensions: ReadonlySet<string>;
  onSkip?: (dir: string, error: NodeJS.ErrnoException) => void;
}): AsyncGenerator<WalkedFile> {
  const realRoot = await fs.realpath(options.root);
  const visited = new Set<string>([realRoot]);
  const inside = (real: string): boolean => real === realRoot || real.startsWith(realRoot + path.sep);
  const isVideoName = (name: string): boolean => options.extensions.has(path.extname(name).toLowerCase());
  // Depth-first with an explicit stack of sorted directories, so the order is
  // deterministic and deep trees cannot overflow the call stack.
  const stack: string[] = [options.root];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    let raw: Dirent<Buffer>[];
    try {
      // Names as bytes: a name that is not UTF-8 must be seen, not silently mangled.
      raw = await fs.readdir(dir, { encoding: 'buffer', withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') yield { path: dir, size: 0, mtimeMs: 0, error: ErrorType.UnreadableFolder };
      else options.onSkip?.(dir, error as NodeJS.ErrnoException);
      continue;
    }
    raw.sort((a, b) => Buffer.compare(a.name, b.name));
    const subdirs: string[] = [];
    const candidates: string[] = [];
    const problems: WalkedFile[] = [];
    for (const entry of raw) {
      const bytes = entry.name;
      const name = bytes.toString('utf8');
      const full = path.join(dir, name);
      if (!Buffer.from(name, 'utf8').equals(bytes)) {
        if (isVideoName(name)) problems.push({ path: full, size: 0, mtimeMs: 0, error: ErrorType.InvalidFileName });
        continue;
      }
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        const real = await fs.realpath(full).catch(() => null);
        if (real === null) {
          if (isVideoName(name)) problems.push({ path: full, size: 0, mtimeMs: 0, error: ErrorType.BrokenLink });
          continue;
        }
        if (!inside(real)) {
          if (isVideoName(name)) problems.push({ path: full, size: 0, mtimeMs: 0, error: ErrorType.OutsideScanRoot });
          continue;
        }
        const target = await fs.stat(real).catch(() => null);
        if (target === null) continue;
        isDir = target.isDirectory();
        isFile = target.isFile();
        if (isDir) {
          if (visited.has(real)) continue;
          visited.add(real);
        }
      } else if (isDir) {
        const real = await fs.realpath(full).catch(() => full);
        if (visited.has(real)) continue;
        visited.add(real);
      }
      if (isDir) {
        if (options.recursive) subdirs.push(full);
        continue;
      }
      if (!isVideoName(name)) continue;
      if (!isFile) {
        // A FIFO named like a video would hang ffprobe forever; a device is no video either.
        problems.push({ path: full, size: 0, mtimeMs: 0, error: ErrorType.NotARegularFile });
        continue;
      }
      candidates.push(full);
    }
    for (const problem of problems) yield problem;
    // Stat a folder's files together: one at a time, the thread-pool round
    // trips made the walk of 5,000 files take a second.
    for (let i = 0; i < candidates.length; i += STAT_PARALLELISM) {
      const slice = candidates.slice(i, i + STAT_PARALLELISM);
      const stats = await Promise.all(slice.map((file) => fs.stat(file).catch(() => null)));
      for (let j = 0; j < slice.length; j += 1) {
        const stat = stats[j];
        if (stat === null || stat === undefined) continue;
        if (!stat.isFile()) continue;
        yield { path: slice[j] as string, size: stat.size, mtimeMs: stat.mtimeMs };
      }
    }
    // Push in reverse so the smallest name is walked first.
    for (let i = subdirs.length - 1; i >= 0; i -= 1) stack.push(subdirs[i] as string);
  }
}
