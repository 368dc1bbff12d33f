/**
 * The probe hosts fingerprint files synchronously, reusing two buffers; the
 * worker does it asynchronously when it matches a moved file. Both must give
 * the same fingerprint for the same file, whatever size came before it.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FINGERPRINT_EDGE_BYTES, fingerprintFile, fingerprintFileSync } from '../../src/activities/fingerprint';

let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'fingerprint-test-'));
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

it('is the same synchronously and asynchronously, for files of every size, one after another', async () => {
  // Large first, then small: a reused buffer holding the last file's bytes would show.
  const sizes = [3 * FINGERPRINT_EDGE_BYTES, 0, 1, 100, FINGERPRINT_EDGE_BYTES, FINGERPRINT_EDGE_BYTES + 1, 2 * FINGERPRINT_EDGE_BYTES - 7, 10, 5 * FINGERPRINT_EDGE_BYTES];
  const seen = new Set<string>();
  for (const [i, size] of sizes.entries()) {
    const file = path.join(work, `f${i}.bin`);
    await fs.writeFile(file, randomBytes(size));
    const sync = fingerprintFileSync(file);
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
  expect(fingerprintFileSync(b).fingerprint).toBe(fingerprintFileSync(a).fingerprint);
  expect(fingerprintFileSync(c).fingerprint).not.toBe(fingerprintFileSync(a).fingerprint);
});
