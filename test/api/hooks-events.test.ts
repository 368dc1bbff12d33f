/**
 * The webhook as real Sonarr and Radarr use it, against the real stack:
 * HTTP Basic with the token as password (all they could send before late
 * 2024), deletes that mark what was deleted missing even when its folder is
 * gone (and nothing when the scan root is offline), Download and Rename
 * scans of just the folders concerned (a rename keeps the video's id), event
 * types this version does not know answered 200, and containment checked
 * before existence on every route that takes a path.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JobBody } from '../../src/scans';
import { ensureTestMedia, type VideoClip } from '../support/media';
import { http, startStack, waitFor, type Stack } from '../support/stack';

const TOKEN = 'hooks-events-token';
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
const auth = { authorization: `Bearer ${TOKEN}` };

interface Video {
  id: number;
  path: string;
  status: 'present' | 'missing';
  moved_from: string | null;
}

let clips: VideoClip[];
let work: string;
/** SCAN_ROOTS: `media` (Sonarr's /data/tv under tv/, Radarr's /data/movies under movies/) and `other`. */
let media: string;
let other: string;
let stack: Stack;

function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

async function hook<T = Record<string, unknown>>(body: unknown, headers: Record<string, string> = auth): Promise<{ status: number; body: T }> {
  return http<T>(stack.baseUrl, 'POST', '/api/v1/hooks/arr', body, headers);
}

async function finished(jobId: string): Promise<JobBody> {
  return waitFor(
    async () => (await http<JobBody>(stack.baseUrl, 'GET', `/api/v1/jobs/${jobId}`, undefined, auth)).body,
    (job) => TERMINAL.includes(job.status),
    90_000,
    100,
  );
}

/** Links distinct clips into `folder` under the given names; returns their paths. */
async function files(folder: string, names: string[]): Promise<string[]> {
  await fs.mkdir(folder, { recursive: true });
  return Promise.all(
    names.map(async (name, i) => {
      const clip = clips[i % clips.length] as VideoClip;
      const file = path.join(folder, name + path.extname(clip.file));
      await fs.copyFile(clip.file, file);
      return file;
    }),
  );
}

/** Scans a folder through the API and waits for the scan to complete. */
async function scanned(folder: string): Promise<void> {
  const res = await http<{ job_id: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: folder }, auth);
  expect(res.status).toBe(202);
  expect((await finished(res.body.job_id)).status).toBe('completed');
}

async function videosUnder(folder: string): Promise<Video[]> {
  const res = await http<{ videos: Video[] }>(stack.baseUrl, 'GET', `/api/v1/videos/search?q=${encodeURIComponent(folder + '/')}&limit=500`, undefined, auth);
  return res.body.videos;
}

async function jobCount(): Promise<number> {
  return (await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?limit=100', undefined, auth)).body.jobs.length;
}

const series = (toolPath: string): Record<string, unknown> => ({ id: 7, title: 'The Show', path: toolPath, tvdbId: 81189, type: 'standard', tags: [] });
const movie = (toolPath: string): Record<string, unknown> => ({ id: 42, title: 'The Film', year: 2021, folderPath: toolPath, tmdbId: 550, tags: [] });
const episodeFile = (toolPath: string, relativePath: string): Record<string, unknown> => ({ id: 301, relativePath, path: `${toolPath}/${relativePath}`, quality: 'WEBDL-1080p', size: 1000 });

beforeAll(async () => {
  clips = (await ensureTestMedia()).filter((clip): clip is VideoClip => clip.hasVideo);
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'hooks-events-')));
  media = path.join(work, 'media');
  other = path.join(work, 'other');
  await fs.mkdir(path.join(media, 'tv'), { recursive: true });
  await fs.mkdir(path.join(media, 'movies'), { recursive: true });
  await fs.mkdir(other, { recursive: true });
  await fs.mkdir(path.join(work, 'outside', 'Show'), { recursive: true });
  stack = await startStack({
    API_TOKEN: TOKEN,
    SCAN_ROOTS: `${media}:${other}`,
    PATH_MAP: `/data/tv=${media}/tv,/data/movies=${media}/movies,/data/other=${other}`,
    THUMBNAILS: 'off',
  });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('HTTP Basic on the webhook (Sonarr and Radarr before late 2024)', () => {
  const test = { series: { id: 1, title: 'Test Title', path: 'C:\\testpath' }, eventType: 'Test', instanceName: 'Sonarr' };

  it.each([['sonarr'], [''], ['any name at all']])('takes Basic auth whose password is the token, with user name %j', async (user) => {
    const res = await hook(test, basic(user, TOKEN));
    expect(res.status).toBe(200);
    expect(res.body).toEqual(expect.objectContaining({ event: 'Test', job_id: null }));
  });

  it('refuses Basic auth with another password, and says it takes Basic', async () => {
    const res = await fetch(`${stack.baseUrl}/api/v1/hooks/arr`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...basic('sonarr', `${TOKEN}x`) },
      body: JSON.stringify(test),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('takes Basic on the webhook only: every other route still wants the bearer token', async () => {
    const res = await http<{ code: string }>(stack.baseUrl, 'GET', '/api/v1/jobs', undefined, basic('sonarr', TOKEN));
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('UNAUTHORIZED');
  });
});

describe('delete events mark what was deleted missing', () => {
  it('marks a deleted series missing although its folder went with it', async () => {
    const show = path.join(media, 'tv', 'Deleted Show');
    await files(path.join(show, 'Season 01'), ['e1', 'e2']);
    await files(path.join(media, 'tv', 'Kept Show'), ['k1']);
    await scanned(path.join(media, 'tv'));
    await fs.rm(show, { recursive: true });
    const res = await hook<{ job_id: null; missing: number }>({ series: series('/data/tv/Deleted Show'), deletedFiles: true, eventType: 'SeriesDelete', instanceName: 'Sonarr' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(expect.objectContaining({ job_id: null, missing: 2 }));
    expect((await videosUnder(show)).map((v) => v.status)).toEqual(['missing', 'missing']);
    // Its neighbour is untouched.
    expect((await videosUnder(path.join(media, 'tv', 'Kept Show'))).map((v) => v.status)).toEqual(['present']);
  });

  it('marks the one deleted episode file missing, and only it', async () => {
    const show = path.join(media, 'tv', 'Episode Show');
    const [first, second] = await files(path.join(show, 'Season 01'), ['S01E01', 'S01E02']);
    await scanned(show);
    await fs.rm(first as string);
    const relative = path.relative(show, first as string);
    const res = await hook<{ missing: number }>({
      series: series('/data/tv/Episode Show'),
      episodes: [{ id: 11, episodeNumber: 1, seasonNumber: 1 }],
      episodeFile: episodeFile('/data/tv/Episode Show', relative),
      deleteReason: 'manual',
      eventType: 'EpisodeFileDelete',
      instanceName: 'Sonarr',
    });
    expect(res.status).toBe(200);
    expect(res.body.missing).toBe(1);
    const videos = await videosUnder(show);
    expect(videos.find((v) => v.path === first)?.status).toBe('missing');
    expect(videos.find((v) => v.path === second)?.status).toBe('present');
  });

  it('marks a deleted movie file and a deleted movie missing, folders gone', async () => {
    const filmA = path.join(media, 'movies', 'Film A (2001)');
    const filmB = path.join(media, 'movies', 'Film B (2002)');
    const [fileA] = await files(filmA, ['Film A (2001)']);
    await files(filmB, ['Film B (2002)']);
    await scanned(path.join(media, 'movies'));
    await fs.rm(filmA, { recursive: true });
    await fs.rm(filmB, { recursive: true });
    const fileDelete = await hook<{ missing: number }>({
      movie: movie('/data/movies/Film A (2001)'),
      movieFile: { id: 9, relativePath: path.basename(fileA as string), path: `/data/movies/Film A (2001)/${path.basename(fileA as string)}` },
      deleteReason: 'manual',
      eventType: 'MovieFileDelete',
      instanceName: 'Radarr',
    });
    expect(fileDelete.status).toBe(200);
    expect(fileDelete.body.missing).toBe(1);
    const movieDelete = await hook<{ missing: number }>({ movie: movie('/data/movies/Film B (2002)'), deletedFiles: true, eventType: 'MovieDelete', instanceName: 'Radarr' });
    expect(movieDelete.status).toBe(200);
    expect(movieDelete.body.missing).toBe(1);
    expect((await videosUnder(filmA)).map((v) => v.status)).toEqual(['missing']);
    expect((await videosUnder(filmB)).map((v) => v.status)).toEqual(['missing']);
  });

  it('marks nothing when the scan root above is empty (a share that is not mounted)', async () => {
    const show = path.join(other, 'Lonely Show');
    await files(show, ['e1']);
    await scanned(other);
    // The whole root is gone from view, as when its share is not mounted.
    await fs.rm(show, { recursive: true });
    const res = await hook<{ job_id: null; missing: number }>({ series: series('/data/other/Lonely Show'), deletedFiles: true, eventType: 'SeriesDelete', instanceName: 'Sonarr' });
    expect(res.status).toBe(200);
    expect(res.body.missing).toBe(0);
    expect((await videosUnder(show)).map((v) => v.status)).toEqual(['present']);
  });
});

describe('targeted scans', () => {
  it("scans just the imported file's folder on Download", async () => {
    const show = path.join(media, 'tv', 'Targeted Show');
    await files(path.join(show, 'Season 01'), ['S01E01', 'S01E02']);
    await files(path.join(show, 'Season 02'), ['S02E01']);
    const res = await hook<{ job_id: string; path: string }>({
      series: series('/data/tv/Targeted Show'),
      episodes: [{ id: 21, episodeNumber: 1, seasonNumber: 2 }],
      episodeFile: episodeFile('/data/tv/Targeted Show', `Season 02/S02E01${path.extname(clips[0]?.file ?? '')}`),
      isUpgrade: false,
      eventType: 'Download',
      instanceName: 'Sonarr',
    });
    expect(res.status).toBe(202);
    expect(res.body.path).toBe(path.join(show, 'Season 02'));
    const job = await finished(res.body.job_id);
    expect(job).toEqual(expect.objectContaining({ status: 'completed', path: path.join(show, 'Season 02') }));
    expect(job.counts.new).toBe(1);
    expect(await videosUnder(path.join(show, 'Season 01'))).toEqual([]);
  });

  const sonarrRename = (folder: string, from: string, to: string): Record<string, unknown> => ({
    series: series(`/data/tv/${folder}`),
    renamedEpisodeFiles: [{ ...episodeFile(`/data/tv/${folder}`, to), previousRelativePath: from, previousPath: `/data/tv/${folder}/${from}` }],
    eventType: 'Rename',
    instanceName: 'Sonarr',
  });
  const radarrRename = (folder: string, from: string, to: string): Record<string, unknown> => ({
    movie: movie(`/data/movies/${folder}`),
    renamedMovieFiles: [{ id: 9, relativePath: to, path: `/data/movies/${folder}/${to}`, previousRelativePath: from, previousPath: `/data/movies/${folder}/${from}` }],
    eventType: 'Rename',
    instanceName: 'Radarr',
  });

  it.each([
    ['Sonarr', 'within its folder', 'tv', sonarrRename, 'Season 01', 'Season 01', 'Season 01'],
    ['Radarr', 'within its folder', 'movies', radarrRename, 'Extras', 'Extras', 'Extras'],
    ['Sonarr', 'across folders', 'tv', sonarrRename, 'Season 1', 'Season 01', '.'],
    ['Radarr', 'across folders', 'movies', radarrRename, 'old', 'new', '.'],
  ])('keeps the video id through a %s Rename %s, scanning just the folders of both paths', async (tool, how, kind, body, fromFolder, toFolder, scannedFolder) => {
    const folder = `${tool} Renamed ${how}`;
    const base = path.join(media, kind, folder);
    const [before] = await files(path.join(base, fromFolder), ['name-before']);
    await files(path.join(base, 'Untouched'), ['u1']);
    await scanned(path.join(media, kind));
    const original = (await videosUnder(base)).find((v) => v.path === before);
    expect(original?.status).toBe('present');
    const after = path.join(base, toFolder, `name-after${path.extname(before as string)}`);
    await fs.mkdir(path.dirname(after), { recursive: true });
    await fs.rename(before as string, after);
    const res = await hook<{ job_id: string; path: string }>(body(folder, path.relative(base, before as string), path.relative(base, after)));
    expect(res.status).toBe(202);
    // The folder holding both paths, and no more.
    expect(res.body.path).toBe(path.join(base, scannedFolder));
    expect((await finished(res.body.job_id)).status).toBe('completed');
    const renamed = (await videosUnder(base)).find((v) => v.path === after);
    expect(renamed).toEqual(expect.objectContaining({ id: original?.id, status: 'present', moved_from: before }));
  });
});

describe('event types this version does not know', () => {
  it('answers them 200 and starts nothing, so the tool does not mark the connection failing', async () => {
    const before = await jobCount();
    const res = await hook<{ job_id: null; event: string }>({ series: series('/data/tv/Targeted Show'), eventType: 'SeriesEditedInTheFuture', instanceName: 'Sonarr' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(expect.objectContaining({ job_id: null, event: 'SeriesEditedInTheFuture' }));
    expect(await jobCount()).toBe(before);
  });
});

describe('containment before existence', () => {
  const outsideMissing = (): string => path.join(work, 'outside', 'no-such-folder');
  const outsideExisting = (): string => path.join(work, 'outside', 'Show');

  it('answers a scan of a path outside SCAN_ROOTS alike whether or not it exists', async () => {
    const missing = await http(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: outsideMissing() }, auth);
    const existing = await http(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: outsideExisting() }, auth);
    const etc = await http(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: '/etc' }, auth);
    const nowhere = await http(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: '/no/such/path/anywhere' }, auth);
    for (const res of [missing, existing, etc, nowhere]) {
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ code: 'PATH_NOT_ALLOWED', message: 'path is outside the allowed scan roots' });
    }
    // Inside the roots a missing path is still named as such.
    const inside = await http<{ code: string }>(stack.baseUrl, 'POST', '/api/v1/videos/scan', { path: path.join(media, 'nothing-here') }, auth);
    expect(inside.status).toBe(400);
    expect(inside.body.code).toBe('INVALID_PATH');
  });

  it('answers a schedule of a path outside SCAN_ROOTS alike whether or not it exists', async () => {
    const missing = await http(stack.baseUrl, 'POST', '/api/v1/schedules', { path: outsideMissing(), every: '1h' }, auth);
    const existing = await http(stack.baseUrl, 'POST', '/api/v1/schedules', { path: outsideExisting(), every: '1h' }, auth);
    expect(missing.status).toBe(403);
    expect(missing.body).toEqual(existing.body);
  });

  it.each(['Download', 'SeriesDelete', 'EpisodeFileDelete'])('answers a %s webhook for a path outside SCAN_ROOTS alike whether or not it exists', async (eventType) => {
    const body = (folder: string): Record<string, unknown> => ({
      series: series(folder),
      episodeFile: episodeFile(folder, 'Season 01/x.mkv'),
      deletedFiles: true,
      eventType,
      instanceName: 'Sonarr',
    });
    const missing = await hook(body(outsideMissing()));
    const existing = await hook(body(outsideExisting()));
    expect(missing.status).toBe(403);
    expect(missing.body).toEqual({ code: 'PATH_NOT_ALLOWED', message: 'path is outside the allowed scan roots' });
    expect(existing.body).toEqual(missing.body);
  });
});
