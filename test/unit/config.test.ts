import { loadConfig } from '../../src/config';

describe('configuration', () => {
  it('uses the defaults of API.md when nothing is set', () => {
    const config = loadConfig({});
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(8000);
    expect(config.temporal).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'video-scan', uiPort: 8233, uiUrl: 'http://127.0.0.1:8233' });
    expect(config.probeTimeoutMs).toBe(30_000);
    expect(config.probeConcurrency).toBeGreaterThanOrEqual(1);
    expect(config.databaseUrl).toMatch(/^sqlite:.*library\.sqlite$/);
    expect(config.scanRoots).toBeUndefined();
    expect(config.scanTimeoutMs).toBeUndefined();
    expect(config.thumbnails).toBe(true);
  });

  it('reads THUMBNAILS=off as a worker that makes no pictures unless asked', () => {
    expect(loadConfig({ THUMBNAILS: 'off' }).thumbnails).toBe(false);
  });

  test.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['PROBE_TIMEOUT_MS', '-5'],
    ['PROBE_CONCURRENCY', '0'],
    ['SCAN_TIMEOUT', 'soon'],
    ['SCAN_ROOTS', 'relative/media'],
    ['TEMPORAL_UI_URL', 'not a url'],
    ['DATABASE_URL', 'mysql://x'],
    ['THUMBNAILS', 'maybe'],
  ])('rejects %s=%s with one line naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid ${name}: `));
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      expect((error as Error).message).not.toContain('\n');
    }
  });

  test.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1h30m', 5_400_000],
    ['45', 45_000],
  ])('reads SCAN_TIMEOUT=%s as %i ms', (text, ms) => {
    expect(loadConfig({ SCAN_TIMEOUT: text }).scanTimeoutMs).toBe(ms);
  });

  it('splits SCAN_ROOTS on colons', () => {
    expect(loadConfig({ SCAN_ROOTS: '/media:/srv/videos' }).scanRoots).toEqual(['/media', '/srv/videos']);
  });
});
