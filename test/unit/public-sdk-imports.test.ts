/**
 * The Temporal SDK's public API is what its releases keep: a module under a
 * package's `lib/` is private and may move or vanish in any release.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

const SRC = path.join(__dirname, '..', '..', 'src');

/** The scan's side of the code: its workflows, activities, Temporal service and worker. */
const CHECKED = ['workflows', 'activities', 'library', 'scan', 'cli', 'thumbnails', 'scans', 'worker.ts', 'worker-main.ts'];

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return sourceFiles(full);
      return Promise.resolve(entry.name.endsWith('.ts') ? [full] : []);
    }),
  );
  return nested.flat();
}

describe('imports of the Temporal SDK', () => {
  it('name only the packages themselves, never a private module under lib/', async () => {
    const offenders: string[] = [];
    const files = (await sourceFiles(SRC)).filter((file) => CHECKED.some((part) => path.relative(SRC, file) === part || path.relative(SRC, file).startsWith(`${part}/`)));
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      const text = await fs.readFile(file, 'utf8');
      for (const match of text.matchAll(/from\s+['"](@temporalio\/[^'"/]+\/[^'"]+)['"]/g)) {
        offenders.push(`${path.relative(SRC, file)}: ${match[1]}`);
      }
      for (const match of text.matchAll(/require\(\s*['"](@temporalio\/[^'"/]+\/[^'"]+)['"]\s*\)/g)) {
        offenders.push(`${path.relative(SRC, file)}: ${match[1]}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
