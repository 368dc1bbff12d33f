/**
 * A file's content fingerprint: what recognises a moved or renamed file
 * without probing it. Reading the first and last 64 KiB costs two reads,
 * whatever the file's size, and covers the container's header and index,
 * which differ between any two real videos of the same size.
 */
import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Bytes read at each end of the file. */
export const FINGERPRINT_EDGE_BYTES = 64 * 1024;

/** Opened as given, not following a link swapped in since the path was checked, and never blocking on a FIFO. */
export const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The two ends of a file of `size` bytes, in fresh (zeroed) buffers. */
function edges(size: number): { head: Buffer; tail: Buffer; tailStart: number } {
  const tailStart = Math.max(0, size - FINGERPRINT_EDGE_BYTES);
  const headLength = Math.min(size, FINGERPRINT_EDGE_BYTES);
  const tailLength = size - tailStart;
  // Zeroed: a file cut short since its stat hashes the same whatever was in memory.
  return { head: Buffer.alloc(headLength), tail: Buffer.alloc(tailLength), tailStart };
}

function digest(size: number, head: Buffer, tail: Buffer): string {
  return createHash('sha1').update(`${size}:`).update(head).update(tail).digest('hex');
}

/**
 * Hashes an open file's size, its first and its last 64 KiB (overlapping for
 * a file under 128 KiB). Only a regular file has a fingerprint: anything else
 * opened (a FIFO or a device swapped in since the check) fails, never read.
 */
export async function fingerprintHandle(handle: FileHandle): Promise<{ fingerprint: string; size: number }> {
  const stat = await handle.stat();
  if (!stat.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
  const { size } = stat;
  const { head, tail, tailStart } = edges(size);
  await handle.read(head, 0, head.length, 0);
  await handle.read(tail, 0, tail.length, tailStart);
  return { fingerprint: digest(size, head, tail), size };
}

/**
 * The fingerprint of `file`, a real path already checked to lie inside the
 * scan's root (see containment.ts): opened as given, with O_NOFOLLOW so that
 * a link swapped in since is not followed, and O_NONBLOCK so that a FIFO
 * swapped in cannot hold the call (and its pool thread) forever. SHA-1 is
 * enough: this tells files apart, it does not defend against forgery. On a
 * media path, take it through filesystem/media-fs.ts, which bounds it with
 * FS_CALL_TIMEOUT.
 */
export async function fingerprintFile(file: string): Promise<{ fingerprint: string; size: number }> {
  const handle = await fs.open(file, OPEN_FLAGS);
  try {
    return await fingerprintHandle(handle);
  } finally {
    await handle.close();
  }
}
