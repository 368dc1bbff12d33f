/**
 * The worker fingerprints files through the bounded calls of media-fs.ts, the
 * probe hosts through their check threads (check-thread.ts, which hashes in
 * code of its own); each must give fingerprintFile's answer for the same file,
 * and neither may block on a FIFO swapped in for a video.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckThreads } from '../../src/filesystem/check-thread';
import { FINGERPRINT_EDGE_BYTES, fingerprintFile } from '../../src/filesystem/fingerprint';
import { createMediaFs } from '../../src/filesystem/media-fs';

const media = createMediaFs({ timeoutMs: 30_000 });
const checks = new CheckThreads(2, 30_000);

/** The fingerprint through media-fs.ts, checked to be the check threads' too. */
async function fingerprintBounded(file: string): Promise<{ fingerprint: string; size: number }> {
  const bounded = media.fingerprint(file);
  // It may fail before the check thread answers: awaited below, never an unhandled rejection meanwhile.
  bounded.catch(() => undefined);
  const checked = (await checks.check(file, file, new AbortController().signal)).fingerprint;
  if (checked instanceof Error) {
    await expect(bounded).rejects.toMatchObject({ code: (checked as NodeJS.ErrnoException).code });
    throw checked;
  }
  expect(checked).toEqual(await bounded);
  return bounded;
}

let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'fingerprint-test-'));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

it('is the same through the bounded calls and directly, for files of every size, one after another', async () => {
  // Large first, then small: a reused buffer holding the last file's bytes would show.
  const sizes = [3 * FINGERPRINT_EDGE_BYTES, 0, 1, 100, FINGERPRINT_EDGE_BYTES, FINGERPRINT_EDGE_BYTES + 1, 2 * FINGERPRINT_EDGE_BYTES - 7, 10, 5 * FINGERPRINT_EDGE_BYTES];
  const seen = new Set<string>();
  for (const [i, size] of sizes.entries()) {
    const file = path.join(work, `f${i}.bin`);
    await fs.writeFile(file, randomBytes(size));
    const sync = await fingerprintBounded(file);
    expect(sync).toEqual(await fingerprintFile(file));
    expect(sync.size).toBe(size);
    seen.add(sync.fingerprint);
  }
  expect(seen.size).toBe(sizes.length);
});

it('reads only the two ends: a byte changed in the middle keeps the fingerprint, one at an end changes it', async () => {
  const base = randomBytes(4 * FINGERPRINT_EDGE_BYTES);
  const a = path.join(work, 'a.bin');
  const b = path.join(work, 'b.bin');
  const c = path.join(work, 'c.bin');
  await fs.writeFile(a, base);
  const middle = Buffer.from(base);
  middle[2 * FINGERPRINT_EDGE_BYTES] = (middle[2 * FINGERPRINT_EDGE_BYTES] as number) ^ 0xff;
  await fs.writeFile(b, middle);
  const end = Buffer.from(base);
  end[end.length - 1] = (end[end.length - 1] as number) ^ 0xff;
  await fs.writeFile(c, end);
  expect((await fingerprintBounded(b)).fingerprint).toBe((await fingerprintBounded(a)).fingerprint);
  expect((await fingerprintBounded(c)).fingerprint).not.toBe((await fingerprintBounded(a)).fingerprint);
});

it('fails at once on a FIFO instead of waiting for a writer that never comes', async () => {
  const fifo = path.join(work, 'swapped.mkv');
  execFileSync('mkfifo', [fifo]);
  await expect(fingerprintFile(fifo)).rejects.toMatchObject({ code: 'ENOTREG' });
  await expect(fingerprintBounded(fifo)).rejects.toMatchObject({ code: 'ENOTREG' });
});
