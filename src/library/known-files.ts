/**
 * The present videos under a scan's root as discovery compares its walk
 * with them (VideoRepository.knownFilesUnder): by path, each with its size,
 * mtime and whether it still lacks a picture. Held compactly, each path as
 * its part below the root in one map to a slot and the rest in typed
 * arrays: a rescan of a million files holds a million of them at once, and
 * a full path and an object each (with the row each was read from) cost the
 * worker hundreds of megabytes more (docs/benchmarks.md, the cluster at
 * 1,000,000 files).
 */

/** What the library knows of a file: its video's size and mtime, and whether the video still lacks a picture (and a recorded failure to make one). */
export interface KnownFile {
  size: number;
  mtimeMs: number;
  pictureless: boolean;
}

const FIRST_SLOTS = 1024;

export class KnownFiles {
  /** Paths below the root (`prefix` taken off) to their slots. */
  private readonly slots = new Map<string, number>();
  private sizes = new Float64Array(FIRST_SLOTS);
  private mtimes = new Float64Array(FIRST_SLOTS);
  private pictureless = new Uint8Array(FIRST_SLOTS);
  private used = 0;

  /** The root with a trailing slash: every path asked of is a full path, and one outside it is not known. */
  private readonly prefix: string;

  constructor(root: string) {
    this.prefix = root.endsWith('/') ? root : `${root}/`;
  }

  /** Files known (and not deleted since). */
  get size(): number {
    return this.slots.size;
  }

  /** Adds a file by its path below the root. */
  add(below: string, file: KnownFile): void {
    let slot = this.slots.get(below);
    if (slot === undefined) {
      if (this.used === this.sizes.length) this.grow();
      slot = this.used;
      this.used += 1;
      this.slots.set(below, slot);
    }
    this.sizes[slot] = file.size;
    this.mtimes[slot] = file.mtimeMs;
    this.pictureless[slot] = file.pictureless ? 1 : 0;
  }

  get(path: string): KnownFile | undefined {
    const slot = this.slotOf(path);
    return slot === undefined ? undefined : this.fileAt(slot);
  }

  has(path: string): boolean {
    return this.slotOf(path) !== undefined;
  }

  /** Takes a file out (the walk found it) and returns what was known of it; its slot is not reused. */
  take(path: string): KnownFile | undefined {
    const below = this.belowOf(path);
    if (below === undefined) return undefined;
    const slot = this.slots.get(below);
    if (slot === undefined) return undefined;
    this.slots.delete(below);
    return this.fileAt(slot);
  }

  delete(path: string): boolean {
    return this.take(path) !== undefined;
  }

  /** The full paths still known, in the order they were added. */
  *keys(): IterableIterator<string> {
    for (const below of this.slots.keys()) yield this.prefix + below;
  }

  clear(): void {
    this.slots.clear();
    this.sizes = new Float64Array(0);
    this.mtimes = new Float64Array(0);
    this.pictureless = new Uint8Array(0);
    this.used = 0;
  }

  private fileAt(slot: number): KnownFile {
    return { size: this.sizes[slot] as number, mtimeMs: this.mtimes[slot] as number, pictureless: this.pictureless[slot] === 1 };
  }

  /** A full path's part below the root, the key of `slots`; undefined for a path outside it. */
  private belowOf(path: string): string | undefined {
    return path.startsWith(this.prefix) ? path.slice(this.prefix.length) : undefined;
  }

  private slotOf(path: string): number | undefined {
    const below = this.belowOf(path);
    return below === undefined ? undefined : this.slots.get(below);
  }

  private grow(): void {
    const length = Math.max(FIRST_SLOTS, this.sizes.length * 2);
    const sizes = new Float64Array(length);
    sizes.set(this.sizes);
    const mtimes = new Float64Array(length);
    mtimes.set(this.mtimes);
    const pictureless = new Uint8Array(length);
    pictureless.set(this.pictureless);
    this.sizes = sizes;
    this.mtimes = mtimes;
    this.pictureless = pictureless;
  }
}
