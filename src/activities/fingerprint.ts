/**
 * A file's content fingerprint: what recognises a moved or renamed file
 * without probing it. Reading the first and last 64 KiB costs two reads,
 * whatever the file's size, and covers the container's header and index,
 * which differ between any two real videos of the same size.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';

/** Bytes read at each end of the file. */
export const FINGERPRINT_EDGE_BYTES = 64 * 1024;

/**
 * Hashes the file's size, its first and its last 64 KiB (overlapping for a
 * file under 128 KiB). `file` must be a real path already checked to lie
 * inside the scan's root (see containment.ts): it is opened as given, with
 * O_NOFOLLOW so that a link swapped in since is not followed. SHA-1 is
 * enough: this tells files apart, it does not defend against forgery.
 */
export async function fingerprintFile(file: string): Promise<{ fingerprint: string; size: number }> {
  const handle = await fs.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const { size } = await handle.stat();
    const hash = createHash('sha1').update(`${size}:`);
    const headLength = Math.min(size, FINGERPRINT_EDGE_BYTES);
    const head = Buffer.alloc(headLength);
    await handle.read(head, 0, headLength, 0);
    hash.update(head);
    const tailStart = Math.max(0, size - FINGERPRINT_EDGE_BYTES);
    const tail = Buffer.alloc(size - tailStart);
    await handle.read(tail, 0, tail.length, tailStart);
    hash.update(tail);
    return { fingerprint: hash.digest('hex'), size };
  } finally {
    await handle.close();
  }
}
