/**
 * A folder a process must write to, checked once at start-up: created when
 * missing, then a file written and removed in it. A worker that cannot write
 * its pictures says so in one line as it starts, not minutes into a scan.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Why `dir` is not writable by this process (one line naming `what`), or undefined when it is. */
export async function unwritableReason(dir: string, what: string): Promise<string | undefined> {
  const probe = path.join(dir, `.write-check-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(probe, '');
    await fs.rm(probe, { force: true });
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    const uid = typeof process.getuid === 'function' ? ` as uid ${process.getuid()}` : '';
    return `cannot write ${what} ${dir}${uid} (${code}): make it writable by this user or point the variable elsewhere`;
  }
}
