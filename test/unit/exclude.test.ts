import { createExcludeMatcher } from '../../src/filesystem/walk';
import { DEFAULT_SCAN_EXCLUDE } from '../../src/model/types';
import { loadConfig } from '../../src/config';

describe('exclusion globs', () => {
  const defaults = createExcludeMatcher(DEFAULT_SCAN_EXCLUDE);

  test.each([
    ['@eaDir', true],
    ['Shows/S01/@eaDir', true],
    ['Shows/#recycle', true],
    ['#snapshot', true],
    ['.Trash-1000', true],
    ['lost+found', true],
    ['$RECYCLE.BIN', true],
    ['System Volume Information', true],
    ['Movies/.hidden', true],
    ['Movies', false],
    ['Movies/Season 1', false],
  ])('default globs: folder %s excluded: %s', (relative, excluded) => {
    expect(defaults(relative, true)).toBe(excluded);
  });

  test.each([
    ['Movies/._film.mp4', true],
    ['Movies/.film.mp4', false],
    ['Movies/film.mp4', false],
  ])('default globs: file %s excluded: %s', (relative, excluded) => {
    expect(defaults(relative, false)).toBe(excluded);
  });

  it('matches a glob with a slash against the path from the root, and one without against any name', () => {
    const matcher = createExcludeMatcher(['Movies/tmp', '*.part', 'x/{a,b}']);
    expect(matcher('Movies/tmp', true)).toBe(true);
    expect(matcher('Other/Movies/tmp', true)).toBe(false);
    expect(matcher('deep/in/it/film.mp4.part', false)).toBe(true);
    expect(matcher('x/a', true)).toBe(true);
    expect(matcher('x/c', true)).toBe(false);
  });

  it('takes SCAN_EXCLUDE as a comma-separated list (commas inside braces belong to the glob), in place of the defaults', () => {
    const config = loadConfig({ SCAN_EXCLUDE: 'tmp, *.{part,partial} ,@eaDir' });
    expect(config.scanExclude).toEqual(['tmp', '*.{part,partial}', '@eaDir']);
    expect(loadConfig({}).scanExclude).toEqual([...DEFAULT_SCAN_EXCLUDE]);
    expect(loadConfig({}).scanSettleSeconds).toBe(0);
    expect(() => loadConfig({ SCAN_SETTLE_SECONDS: '-1' })).toThrow(/SCAN_SETTLE_SECONDS/);
  });
});
