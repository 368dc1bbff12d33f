/**
 * POST /api/v1/hooks/arr with the bodies Sonarr (v3/v4) and Radarr (v3+)
 * document for their Webhook connection, against the real stack: the folder
 * concerned is scanned (and only it), PATH_MAP translates the tools' paths,
 * SCAN_ROOTS holds, the token is required, the test event is answered.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mapToolPath } from '../../src/api/hooks';
import { loadConfig } from '../../src/config';
import type { JobBody } from '../../src/scans';
import { buildLibrary, ensureTestMedia, type TestClip } from '../support/media';
import { http, startStack, waitFor, type Stack, holdingProber } from '../support/stack';

const TOKEN = 'hooks-test-token';
const TERMINAL = ['completed', 'failed', 'cancelled', 'timeout'];
const auth = { authorization: `Bearer ${TOKEN}` };

let clips: TestClip[];
let work: string;
/** The workers' view: SCAN_ROOTS. */
let media: string;
let stack: Stack;

// ---- the tools' documented bodies (fields as Sonarr and Radarr serialise them) ----

function sonarrSeries(toolPath: string): Record<string, unknown> {
  return { id: 7, title: 'The Show', titleSlug: 'the-show', path: toolPath, tvdbId: 81189, tvMazeId: 169, imdbId: 'tt0903747', type: 'standard', year: 2008, tags: [] };
}

function sonarrEpisodeFile(toolPath: string, relativePath: string): Record<string, unknown> {
  return {
    id: 301,
    relativePath,
    path: `${toolPath}/${relativePath}`,
    quality: 'WEBDL-1080p',
    qualityVersion: 1,
    releaseGroup: 'GRP',
    sceneName: 'The.Show.S01E01.1080p.WEB-DL-GRP',
    size: 1_234_567_890,
    dateAdded: '2026-11-25T12:00:00Z',
    mediaInfo: { audioChannels: 5.1, audioCodec: 'EAC3', audioLanguages: ['eng'], height: 1080, width: 1920, subtitles: ['eng'], videoCodec: 'h264', videoDynamicRange: '', videoDynamicRangeType: '' },
  };
}

const sonarrEpisodes = [{ id: 11, episodeNumber: 1, seasonNumber: 1, title: 'Pilot', airDate: '2008-01-20', airDateUtc: '2008-01-21T03:00:00Z', seriesId: 7, tvdbId: 349232 }];

const sonarr = {
  download: (toolPath: string) => ({
    series: sonarrSeries(toolPath),
    episodes: sonarrEpisodes,
    episodeFile: sonarrEpisodeFile(toolPath, 'Season 01/The Show - S01E01 - Pilot.mkv'),
    release: { quality: 'WEBDL-1080p', qualityVersion: 1, releaseGroup: 'GRP', releaseTitle: 'The.Show.S01E01.1080p.WEB-DL-GRP', indexer: 'Indexer', size: 1_234_567_890 },
    isUpgrade: false,
    downloadClient: 'SABnzbd',
    downloadClientType: 'SABnzbd',
    downloadId: 'SABnzbd_nzo_abc123',
    customFormatInfo: { customFormats: [], customFormatScore: 0 },
    eventType: 'Download',
    instanceName: 'Sonarr',
    applicationUrl: '',
  }),
  rename: (toolPath: string) => ({
    series: sonarrSeries(toolPath),
    renamedEpisodeFiles: [
      {
        ...sonarrEpisodeFile(toolPath, 'Season 01/The Show - S01E01 - Pilot.mkv'),
        previousRelativePath: 'Season 01/the.show.s01e01.mkv',
        previousPath: `${toolPath}/Season 01/the.show.s01e01.mkv`,
      },
    ],
    eventType: 'Rename',
    instanceName: 'Sonarr',
    applicationUrl: '',
  }),
  episodeFileDelete: (toolPath: string) => ({
    series: sonarrSeries(toolPath),
    episodes: sonarrEpisodes,
    episodeFile: sonarrEpisodeFile(toolPath, 'Season 01/The Show - S01E01 - Pilot.mkv'),
    deleteReason: 'manual',
    eventType: 'EpisodeFileDelete',
    instanceName: 'Sonarr',
    applicationUrl: '',
  }),
  seriesDelete: (toolPath: string) => ({ series: sonarrSeries(toolPath), deletedFiles: true, eventType: 'SeriesDelete', instanceName: 'Sonarr', applicationUrl: '' }),
  // What Sonarr's "Test" button sends, verbatim in shape and values.
  test: () => ({
    series: { id: 1, title: 'Test Title', path: 'C:\\testpath', tvdbId: 1234, tags: ['test-tag'] },
    episodes: [{ id: 123, episodeNumber: 1, seasonNumber: 1, title: 'Test title' }],
    eventType: 'Test',
    instanceName: 'Sonarr',
    applicationUrl: '',
  }),
};

function radarrMovie(toolPath: string): Record<string, unknown> {
  return { id: 42, title: 'The Film', year: 2021, releaseDate: '2021-06-01', folderPath: toolPath, tmdbId: 550, imdbId: 'tt0137523', overview: 'A film.', tags: [] };
}

function radarrMovieFile(toolPath: string): Record<string, unknown> {
  return {
    id: 901,
    relativePath: 'The Film (2021) Bluray-1080p.mkv',
    path: `${toolPath}/The Film (2021) Bluray-1080p.mkv`,
    quality: 'Bluray-1080p',
    qualityVersion: 1,
    releaseGroup: 'GRP',
    sceneName: 'The.Film.2021.1080p.BluRay.x264-GRP',
    indexerFlags: '0',
    size: 8_589_934_592,
    dateAdded: '2026-11-25T12:00:00Z',
    mediaInfo: { audioChannels: 5.1, audioCodec: 'DTS', audioLanguages: ['eng'], height: 1080, width: 1920, subtitles: ['eng'], videoCodec: 'x264', videoDynamicRange: '', videoDynamicRangeType: '' },
  };
}

const radarr = {
  download: (toolPath: string) => ({
    movie: radarrMovie(toolPath),
    remoteMovie: { tmdbId: 550, imdbId: 'tt0137523', title: 'The Film', year: 2021 },
    movieFile: radarrMovieFile(toolPath),
    release: { quality: 'Bluray-1080p', qualityVersion: 1, releaseGroup: 'GRP', releaseTitle: 'The.Film.2021.1080p.BluRay.x264-GRP', indexer: 'Indexer', size: 8_589_934_592 },
    isUpgrade: false,
    downloadClient: 'qBittorrent',
    downloadClientType: 'qBittorrent',
    downloadId: 'ABCDEF0123456789',
    customFormatInfo: { customFormats: [], customFormatScore: 0 },
    eventType: 'Download',
    instanceName: 'Radarr',
    applicationUrl: '',
  }),
  rename: (toolPath: string) => ({
    movie: radarrMovie(toolPath),
    renamedMovieFiles: [{ ...radarrMovieFile(toolPath), previousRelativePath: 'the.film.2021.mkv', previousPath: `${toolPath}/the.film.2021.mkv` }],
    eventType: 'Rename',
    instanceName: 'Radarr',
    applicationUrl: '',
  }),
  movieFileDelete: (toolPath: string) => ({
    movie: radarrMovie(toolPath),
    movieFile: radarrMovieFile(toolPath),
    deleteReason: 'upgrade',
    eventType: 'MovieFileDelete',
    instanceName: 'Radarr',
    applicationUrl: '',
  }),
  movieDelete: (toolPath: string) => ({ movie: radarrMovie(toolPath), deletedFiles: true, movieFolderSize: 8_589_934_592, eventType: 'MovieDelete', instanceName: 'Radarr', applicationUrl: '' }),
  // What Radarr's "Test" button sends.
  test: () => ({
    movie: { id: 1, title: 'Test Title', year: 1970, folderPath: 'C:\\testpath', releaseDate: '1970-01-01', tags: ['test-tag'] },
    remoteMovie: { tmdbId: 1234, imdbId: '5678', title: 'Test title', year: 1970 },
    release: { indexer: 'Test Indexer', quality: 'Test Quality', qualityVersion: 1, releaseGroup: 'Test Group', releaseTitle: 'Test Title', size: 9999999 },
    eventType: 'Test',
    instanceName: 'Radarr',
    applicationUrl: '',
  }),
};

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

async function jobCount(): Promise<number> {
  const res = await http<{ jobs: JobBody[] }>(stack.baseUrl, 'GET', '/api/v1/jobs?limit=100', undefined, auth);
  return res.body.jobs.length;
}

/** Makes the workers' folder `<media>/<relative>` with `count` videos; returns its path. */
async function folder(relative: string, count: number): Promise<string> {
  const dir = path.join(media, relative);
  await buildLibrary(dir, count, clips);
  return dir;
}

beforeAll(async () => {
  clips = await ensureTestMedia();
  work = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'hooks-')));
  media = path.join(work, 'media');
  await fs.mkdir(path.join(media, 'tv'), { recursive: true });
  await fs.mkdir(path.join(media, 'movies'), { recursive: true });
  await fs.mkdir(path.join(work, 'outside', 'Show'), { recursive: true });
  stack = await startStack(
    {
      API_TOKEN: TOKEN,
      SCAN_ROOTS: media,
      // Sonarr sees /data/tv, Radarr a Windows share; the workers see both under `media`.
      PATH_MAP: `/data/tv=${media}/tv,\\\\nas\\movies=${media}/movies`,
      SCAN_BATCH_SIZE: '10',
      PROBE_CONCURRENCY: '2',
    },
    { wrapProber: holdingProber },
  );
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(work, { recursive: true, force: true });
});

describe('POST /api/v1/hooks/arr', () => {
  it("scans just the series folder of Sonarr's Download event, at the workers' path", async () => {
    const show = await folder('tv/Download Show', 12);
    const neighbour = await folder('tv/Neighbour Show', 5);
    const res = await hook<{ job_id: string; path: string }>(sonarr.download('/data/tv/Download Show'));
    expect(res.status).toBe(202);
    expect(res.body.path).toBe(show);
    const job = await finished(res.body.job_id);
    expect(job).toEqual(expect.objectContaining({ status: 'completed', path: show }));
    expect(job.counts.new).toBe(12);
    // The sibling series was not part of it.
    const sibling = await http<{ total: number }>(stack.baseUrl, 'GET', `/api/v1/videos/search?q=${encodeURIComponent(neighbour)}`, undefined, auth);
    expect(sibling.body.total).toBe(0);
  });

  it("scans just the movie folder of Radarr's Download event, through a Windows-style PATH_MAP entry", async () => {
    const film = await folder('movies/The Film (2021)', 3);
    const res = await hook<{ job_id: string; path: string }>(radarr.download('\\\\nas\\movies\\The Film (2021)'));
    expect(res.status).toBe(202);
    expect(res.body.path).toBe(film);
    const job = await finished(res.body.job_id);
    expect(job).toEqual(expect.objectContaining({ status: 'completed', path: film }));
    expect(job.counts.new).toBe(3);
  });

  test.each([
    ['Sonarr Rename', (p: string) => sonarr.rename(p), 'tv', '/data/tv'],
    ['Radarr Rename', (p: string) => radarr.rename(p), 'movies', '\\\\nas\\movies'],
  ])('scans the folder after %s', async (name, body, kind, toolRoot) => {
    const name_ = name.replace(/\s+/g, '-');
    const dir = await folder(`${kind}/${name_}`, 4);
    const sep = toolRoot.startsWith('\\') ? '\\' : '/';
    const res = await hook<{ job_id: string; path: string }>(body(`${toolRoot}${sep}${name_}`));
    expect(res.status).toBe(202);
    expect(res.body.path).toBe(dir);
    const job = await finished(res.body.job_id);
    expect(job).toEqual(expect.objectContaining({ status: 'completed', path: dir }));
  });

  test.each([
    ['Sonarr SeriesDelete', (p: string) => sonarr.seriesDelete(p), '/data/tv/Gone Show'],
    ['Radarr MovieDelete', (p: string) => radarr.movieDelete(p), '\\\\nas\\movies\\Gone Film (1999)'],
    ['Sonarr EpisodeFileDelete', (p: string) => sonarr.episodeFileDelete(p), '/data/tv/Gone Show'],
    ['Radarr MovieFileDelete', (p: string) => radarr.movieFileDelete(p), '\\\\nas\\movies\\Gone Film (1999)'],
  ])('answers %s for a folder that went with it with 200 and no scan', async (_name, body, toolPath) => {
    const before = await jobCount();
    const res = await hook<{ job_id: string | null }>(body(toolPath));
    expect(res.status).toBe(200);
    expect(res.body.job_id).toBeNull();
    expect(await jobCount()).toBe(before);
  });

  it('scans the folder after a series delete that kept its files', async () => {
    const dir = await folder('tv/Kept Show', 2);
    const res = await hook<{ job_id: string; path: string }>({ ...sonarr.seriesDelete('/data/tv/Kept Show'), deletedFiles: false });
    expect(res.status).toBe(202);
    expect(res.body.path).toBe(dir);
    expect((await finished(res.body.job_id)).status).toBe('completed');
  });

  test.each([
    ['Sonarr', sonarr.test],
    ['Radarr', radarr.test],
  ])("answers %s's test event with 200 and starts nothing", async (_tool, body) => {
    const before = await jobCount();
    const res = await hook<{ job_id: string | null; event: string }>(body());
    expect(res.status).toBe(200);
    expect(res.body).toEqual(expect.objectContaining({ job_id: null, event: 'Test' }));
    expect(await jobCount()).toBe(before);
  });

  it('answers a Grab (nothing on disk yet) with 200 and no scan', async () => {
    const res = await hook({ ...sonarr.download('/data/tv/Download Show'), eventType: 'Grab', episodeFile: undefined });
    expect(res.status).toBe(200);
    expect(res.body.job_id).toBeNull();
  });

  it("gives a second event for a folder being scanned that scan's id, with 200", async () => {
    await folder('tv/held', 3);
    const first = await hook<{ job_id: string }>(sonarr.download('/data/tv/held'));
    expect(first.status).toBe(202);
    const second = await hook<{ job_id: string }>(sonarr.rename('/data/tv/held'));
    expect(second.status).toBe(200);
    expect(second.body.job_id).toBe(first.body.job_id);
    await http(stack.baseUrl, 'POST', `/api/v1/jobs/${first.body.job_id}/cancel`, undefined, auth);
    expect((await finished(first.body.job_id)).status).toBe('cancelled');
  });

  it("takes a season pack's large ImportComplete body", async () => {
    const dir = await folder('tv/Season Pack Show', 2);
    const files = Array.from({ length: 40 }, (_, i) => sonarrEpisodeFile('/data/tv/Season Pack Show', `Season 01/The Show - S01E${String(i + 1).padStart(2, '0')}.mkv`));
    const body = { ...sonarr.download('/data/tv/Season Pack Show'), eventType: 'ImportComplete', episodeFile: undefined, episodeFiles: files, sourcePath: '/downloads/pack', destinationPath: '/data/tv/Season Pack Show' };
    expect(JSON.stringify(body).length).toBeGreaterThan(16 * 1024);
    const res = await hook<{ job_id: string; path: string }>(body);
    expect(res.status).toBe(202);
    expect(res.body.path).toBe(dir);
    await finished(res.body.job_id);
  });

  test.each([
    ['an empty object', {}],
    ['a Download without series or movie', { eventType: 'Download', episodeFile: { path: '/data/tv/x/y.mkv' } }],
    ['a series without a path', { eventType: 'Download', series: { id: 1, title: 'x' } }],
    ['a JSON array', [1, 2]],
  ])('refuses %s with 400', async (_name, body) => {
    const res = await hook<{ code: string; message: string }>(body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_REQUEST');
  });

  it('refuses a folder outside SCAN_ROOTS with 403, whether given as is or through a ".." escape', async () => {
    const outside = await hook<{ code: string }>(sonarr.download(path.join(work, 'outside', 'Show')));
    expect(outside.status).toBe(403);
    expect(outside.body.code).toBe('PATH_NOT_ALLOWED');
    const escape = await hook<{ code: string }>(sonarr.download('/data/tv/../../outside/Show'));
    expect(escape.status).toBe(400);
    expect(escape.body.code).toBe('INVALID_PATH');
  });

  it('refuses a path that PATH_MAP does not translate and the workers do not have (outside SCAN_ROOTS: 403, whether or not it exists)', async () => {
    await folder('tv/Unmapped Show', 1);
    const res = await hook<{ code: string }>(sonarr.download('/srv/elsewhere/tv/Unmapped Show'));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('PATH_NOT_ALLOWED');
  });

  it('is described in the OpenAPI document', async () => {
    const doc = await http<{ paths: Record<string, { post?: { responses: Record<string, unknown> } }> }>(stack.baseUrl, 'GET', '/api/openapi.json', undefined, auth);
    expect(Object.keys(doc.body.paths['/api/v1/hooks/arr']?.post?.responses ?? {})).toEqual(expect.arrayContaining(['200', '202', '400', '401', '403']));
  });

  it('requires the bearer token', async () => {
    const res = await hook<{ code: string }>(sonarr.test(), {});
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('UNAUTHORIZED');
  });
});

describe('PATH_MAP', () => {
  test.each([
    ['a pair without "="', '/tv'],
    ['a pair with two "="', '/tv=/a=/b'],
    ['a relative "to"', '/tv=media/tv'],
  ])('stops start-up with one line naming PATH_MAP for %s', (_name, value) => {
    expect(() => loadConfig({ PATH_MAP: value })).toThrow(/^invalid PATH_MAP: /);
  });

  it('translates by whole path components, the longest "from" first, keeping ".." for validation to refuse', () => {
    const { pathMap } = loadConfig({ PATH_MAP: '/data=/srv/all, /data/tv=/srv/tv ,C:\\Media=/srv/win' });
    expect(mapToolPath('/data/tv/Show', pathMap)).toBe('/srv/tv/Show');
    expect(mapToolPath('/data/tv2/Show', pathMap)).toBe('/srv/all/tv2/Show');
    expect(mapToolPath('/data', pathMap)).toBe('/srv/all');
    expect(mapToolPath('/database/x', pathMap)).toBe('/database/x');
    expect(mapToolPath('C:\\Media\\Films\\Heat (1995)', pathMap)).toBe('/srv/win/Films/Heat (1995)');
    expect(mapToolPath('/data/tv/../../etc', pathMap)).toBe('/srv/tv/../../etc');
    expect(mapToolPath('/elsewhere/x', pathMap)).toBe('/elsewhere/x');
  });
});
