import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DomainError } from '../errors';

/**
 * Turns the `path` of a scan request into the real path of a directory inside
 * the allowed roots, or throws INVALID_PATH / PATH_NOT_ALLOWED.
 *
 * Containment is checked on real paths (symlinks resolved) and by whole path
 * components, so `/media-evil` is not inside `/media`.
 */
export async function resolveScanRoot(requested: string, allowedRoots: string[] | undefined): Promise<string> {
  if (requested.includes('\0')) throw new DomainError('INVALID_PATH', 400, 'path contains a NUL byte');
  if (!path.isAbsolute(requested)) throw new DomainError('INVALID_PATH', 400, 'path must be absolute');
  if (requested.split(/[\\/]/).includes('..')) throw new DomainError('INVALID_PATH', 400, 'path must not contain ".." segments');
  let real: string;
  try {
    real = await fs.realpath(requested);
  } catch {
    throw new DomainError('INVALID_PATH', 400, `path does not exist: ${requested}`);
  }
  const stat = await fs.stat(real).catch(() => null);
  if (stat === null || !stat.isDirectory()) throw new DomainError('INVALID_PATH', 400, `path is not a directory: ${requested}`);
  if (allowedRoots !== undefined) {
    const realRoots = await Promise.all(allowedRoots.map((root) => fs.realpath(root).catch(() => root)));
    const inside = realRoots.some((root) => real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep));
    if (!inside) throw new DomainError('PATH_NOT_ALLOWED', 403, 'path is outside the allowed scan roots');
  }
  return real;
}
