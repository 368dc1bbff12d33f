/**
 * A file's content fingerprint: what recognises a moved or renamed file
 * without probing it. Reading the first and last 64 KiB costs two reads,
 * whatever the file's size, and covers the container's header and index,
 * which differ between any two real videos of the same size.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, promises as fs, readSync } from 'node:fs';

/** Bytes read at each end of the file. */
export const FINGERPRINT_EDGE_BYTES = 64 * 1024;

/** Opened as given, not following a link swapped in since the path was checked. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/** The two ends of a file of `size` bytes, read into `buffers` (zeroed, then cut to length) or into fresh ones. */
function edges(size: number, buffers?: { head: Buffer; tail: Buffer }): { head: Buffer; tail: Buffer; tailStart: number } {
  const tailStart = Math.max(0, size - FINGERPRINT_EDGE_BYTES);
  const headLength = Math.min(size, FINGERPRINT_EDGE_BYTES);
  const tailLength = size - tailStart;
  // Zeroed, as fresh buffers are: a file cut short since its stat hashes the same either way.
  if (buffers !== undefined) return { head: buffers.head.subarray(0, headLength).fill(0), tail: buffers.tail.subarray(0, tailLength).fill(0), tailStart };
  return { head: Buffer.alloc(headLength), tail: Buffer.alloc(tailLength), tailStart };
}

function digest(size: number, head: Buffer, tail: Buffer): string {
  return createHash('sha1').update(`${size}:`).update(head).update(tail).digest('hex');
}

/**
 * Hashes the file's size, its first and its last 64 KiB (overlapping for a
 * file under 128 KiB). `file` must be a real path already checked to lie
 * inside the scan's root (see containment.ts): it is opened as given, with
 * O_NOFOLLOW so that a link swapped in since is not followed. SHA-1 is
 * enough: this tells files apart, it does not defend against forgery.
 */
export async function fingerprintFile(file: string): Promise<{ fingerprint: string; size: number }> {
  const handle = await fs.open(file, OPEN_FLAGS);
  try {
    const { size } = await handle.stat();
    const { head, tail, tailStart } = edges(size);
    await handle.read(head, 0, head.length, 0);
    await handle.read(tail, 0, tail.length, tailStart);
    return { fingerprint: digest(size, head, tail), size };
  } finally {
    await handle.close();
  }
}

/**
 * The two ends' buffers of fingerprintFileSync, reused: a probe host
 * fingerprints hundreds of files a second, and fresh buffers were 128 KiB of
 * garbage outside the heap per file, tens of MB of RSS before a collection.
 */
let scratch: { head: Buffer; tail: Buffer } | null = null;

/** The same, synchronously: for a probe host, as containment's syncPathCalls (the file's ends are mostly cached, just read by its probe). */
export function fingerprintFileSync(file: string): { fingerprint: string; size: number } {
  const fd = openSync(file, OPEN_FLAGS);
  try {
    const { size } = fstatSync(fd);
    scratch ??= { head: Buffer.alloc(FINGERPRINT_EDGE_BYTES), tail: Buffer.alloc(FINGERPRINT_EDGE_BYTES) };
    const { head, tail, tailStart } = edges(size, scratch);
    readSync(fd, head, 0, head.length, 0);
    readSync(fd, tail, 0, tail.length, tailStart);
    return { fingerprint: digest(size, head, tail), size };
  } finally {
    closeSync(fd);
  }
}
