/**
 * Two small defects of the API, against the real stack: a page token holding
 * a number no date can hold is a bad request (400), not a crash (500); and a
 * picture's ETag comes with the picture (its file's size and time), so a
 * conditional request for it reads nothing and a remade picture gets a new one.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { ensureTestMedia, type VideoClip } from '../support/media';
import { http, startStack, waitFor, type Stack } from '../support/stack';

let stack: Stack;
let work: string;

beforeAll(async () => {
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'small-defects-')));
  stack = await startStack({ SCAN_ROOTS: work });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('page tokens', () => {
  const token = (position: unknown): string => Buffer.from(JSON.stringify(position)).toString('base64url');

  it.each([
    ['a huge running place', { cursor: null, running: 1e300, closed: 'top' }],
    ['a huge closed place', { cursor: null, running: 'top', closed: -1e20 }],
    ['a place just past what a date holds', { cursor: null, running: 8.64e15, closed: null }],
  ])('answers %s with 400, not 500', async (_name, position) => {
    const res = await http<{ code: string }>(stack.baseUrl, 'GET', `/api/v1/jobs?page_token=${token(position)}`);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_REQUEST');
  });
});

describe('thumbnail ETag', () => {
  it('answers a conditional request for a picture without reading it, and names a remade picture anew', async () => {
    const clip = (await ensureTestMedia()).find((c): c is VideoClip => c.hasVideo) as VideoClip;
    const folder = path.join(work, 'pictures');
    await fs.mkdir(folder);
    await fs.copyFile(clip.file, path.join(folder, `clip${path.extname(clip.file)}`));
    const started = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder });
    await waitFor(async () => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${started.body.job_id}`)).body, (job) => job.status === 'completed');
    const video = await waitFor(
      async () => (await http<{ videos: { id: number; thumbnail_at: string | null }[] }>(stack.baseUrl, 'GET', '/api/v1/videos')).body.videos[0],
      (v) => v?.thumbnail_at != null,
    );
    const id = (video as { id: number }).id;
    const url = `${stack.baseUrl}/api/v1/videos/${id}/thumbnail`;
    const first = await fetch(url);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-thumbnail')).toBe('video');
    const etag = first.headers.get('etag') as string;
    expect(etag).toMatch(/^"[^"]+"$/);
    const picture = path.join(stack.config.thumbnailDir, String(id % 100).padStart(2, '0'), `${id}.jpg`);
    expect(Buffer.from(await first.arrayBuffer())).toEqual(await fs.readFile(picture));

    // A conditional request reads nothing of the picture (the API's reads of it are watched).
    const readSpy = jest.spyOn(fs, 'readFile');
    try {
      const again = await fetch(url, { headers: { 'if-none-match': etag } });
      expect(again.status).toBe(304);
      expect(readSpy.mock.calls.filter(([file]) => String(file) === picture)).toEqual([]);
    } finally {
      readSpy.mockRestore();
    }

    // A remade picture (written apart and renamed into place, as the thumbnailer does) is named anew.
    const remade = `${picture}.new`;
    await fs.writeFile(remade, Buffer.concat([await fs.readFile(picture), Buffer.from([0xff, 0xd9])]));
    await fs.rename(remade, picture);
    const changed = await fetch(url, { headers: { 'if-none-match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect(Buffer.from(await changed.arrayBuffer())).toEqual(await fs.readFile(picture));
  });
});
