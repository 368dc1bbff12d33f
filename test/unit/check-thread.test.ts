/**
 * A probe host resolves each file through its check threads (check-thread.ts):
 * resolveInside must say of every kind of path what it says through
 * media-fs.ts's bounded calls, and an aborted check must answer at once.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckThreads } from '../../src/filesystem/check-thread';
import { resolveInside } from '../../src/filesystem/containment';
import { createMediaFs } from '../../src/filesystem/media-fs';

const media = createMediaFs({ timeoutMs: 30_000 });
const checks = new CheckThreads(2, 30_000);
let work: string;
let root: string;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'check-thread-test-')));
  root = path.join(work, 'root');
  await fs.mkdir(path.join(root, 'folder'), { recursive: true });
  await fs.writeFile(path.join(root, 'folder', 'a.mkv'), 'a');
  await fs.writeFile(path.join(work, 'outside.mkv'), 'o');
  await fs.symlink(path.join(root, 'folder', 'a.mkv'), path.join(root, 'link-in.mkv'));
  await fs.symlink(path.join(work, 'outside.mkv'), path.join(root, 'link-out.mkv'));
  await fs.symlink(path.join(root, 'gone.mkv'), path.join(root, 'dangling.mkv'));
  await fs.symlink('loop.mkv', path.join(root, 'loop.mkv'));
  await fs.symlink(path.join(work), path.join(root, 'up'));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

it('resolves every kind of path as the bounded calls do', async () => {
  const paths = ['folder/a.mkv', 'link-in.mkv', 'link-out.mkv', 'dangling.mkv', 'loop.mkv', 'gone.mkv', 'folder', 'up/outside.mkv', 'folder/a.mkv/x', 'relative'];
  const signal = new AbortController().signal;
  const seen = new Set<string>();
  for (const relative of paths) {
    const file = relative === 'relative' ? relative : path.join(root, relative);
    const bounded = await resolveInside(root, file, media);
    const checked = await resolveInside(root, file, (await checks.check(file, null, signal)).calls);
    const summary = (r: typeof bounded): unknown => (r.ok ? { real: r.real, file: r.stat.isFile(), size: r.stat.size, mtimeMs: r.stat.mtimeMs } : r.reason);
    expect(summary(checked)).toEqual(summary(bounded));
    seen.add(JSON.stringify(summary(bounded)));
  }
  // A file, a folder, and outside_scan_root, broken_link and file_vanished.
  expect(seen.size).toBe(5);
});

it('rejects with the reason of an aborted signal, and serves the next check', async () => {
  const controller = new AbortController();
  const file = path.join(root, 'folder', 'a.mkv');
  const asked = checks.check(file, file, controller.signal);
  controller.abort(new Error('stopped'));
  await expect(asked).rejects.toThrow('stopped');
  const next = await resolveInside(root, file, (await checks.check(file, null, new AbortController().signal)).calls);
  expect(next.ok).toBe(true);
});
