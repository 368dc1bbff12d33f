/**
 * The scans table as the jobs list reads it, on both dialects: newest first
 * by created_at with the scan id breaking ties, a keyset page at a time, one
 * outcome or the unfinished ones, and a scan's last run recorded with its end.
 */
import path from 'node:path';
import { Library } from '../../src/library/library';
import { bothDialects } from '../support/library-dialects';

const dialects = bothDialects('scanner_scan_list', path.join('lib', 'library.sqlite'));

describe.each(dialects)('the scans list on %s', (_name, url) => {
  let library: Library;

  beforeAll(async () => {
    library = await Library.open(url());
    // Three scans share a millisecond: the id orders them.
    const scans: [string, string, string | null][] = [
      ['scan-a', '2026-01-01T00:00:01.000Z', 'completed'],
      ['scan-b', '2026-01-01T00:00:02.000Z', null],
      ['scan-c', '2026-01-01T00:00:02.000Z', 'failed'],
      ['scan-d', '2026-01-01T00:00:02.000Z', 'completed'],
      ['scan-e', '2026-01-01T00:00:03.000Z', null],
    ];
    for (const [scanId, createdAt, outcome] of scans) {
      await library.createScan({ scanId, root: `/r/${scanId}`, recursive: true, force: false, retryOf: null, createdAt });
      if (outcome !== null) await library.finishScan(scanId, { outcome, counts: { discovered: 1 }, error: null, runId: `run-${scanId}` });
    }
  });

  afterAll(async () => {
    await library.close();
  });

  it('pages newest first, the same in pages of one as in one page', async () => {
    const whole = (await library.listScans({ limit: 10 })).map((scan) => scan.scanId);
    expect(whole).toEqual(['scan-e', 'scan-d', 'scan-c', 'scan-b', 'scan-a']);
    const paged: string[] = [];
    let after: { createdAt: string; scanId: string } | undefined;
    for (;;) {
      const [scan] = await library.listScans({ limit: 1, ...(after ? { after } : {}) });
      if (scan === undefined) break;
      paged.push(scan.scanId);
      after = { createdAt: scan.createdAt, scanId: scan.scanId };
    }
    expect(paged).toEqual(whole);
  });

  it('keeps one outcome, or the scans without one, in the same order', async () => {
    expect((await library.listScans({ limit: 10, outcome: 'completed' })).map((scan) => scan.scanId)).toEqual(['scan-d', 'scan-a']);
    expect((await library.listScans({ limit: 10, outcome: 'unfinished' })).map((scan) => scan.scanId)).toEqual(['scan-e', 'scan-b']);
    const after = { createdAt: '2026-01-01T00:00:02.000Z', scanId: 'scan-d' };
    expect((await library.listScans({ limit: 10, outcome: 'completed', after })).map((scan) => scan.scanId)).toEqual(['scan-a']);
  });

  it('keeps the time a scan was asked for, and the run that ended it', async () => {
    expect(await library.getScan('scan-d')).toMatchObject({ createdAt: '2026-01-01T00:00:02.000Z', outcome: 'completed', runId: 'run-scan-d' });
    expect(await library.getScan('scan-b')).toMatchObject({ outcome: null, runId: null });
  });
});
