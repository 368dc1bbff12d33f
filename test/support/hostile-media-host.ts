/**
 * A media host for tests: the real dispatch and the real backends
 * (src/media-host/dispatch.ts), with what a test asks for on its command line
 * (see hostileHost in media-hosts.ts):
 * - `--crash-on <text>`: dies of SIGSEGV, as on a demuxer bug, when asked to
 *   probe or picture a file whose name contains the text (with whatever else
 *   it has in flight);
 * - `--probe-log <file>`: appends every path it hands its prober, one a line;
 * - `--start-log <file>`: appends its pid when it starts.
 * And always: a file named `*.stand-in` holds the path of another file (a
 * FIFO that never ends), which the prober reads in its place. The stand-in
 * is a regular file, so it passes the checks inside its root; the prober then
 * hangs in the kernel, or reads for ever, as on a stuck share.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadBackend, serveHost, type HostBackend } from '../../src/media-host/dispatch';

function option(name: string): string | null {
  const index = process.argv.indexOf(name);
  return index >= 0 ? (process.argv[index + 1] ?? null) : null;
}

const crashOn = option('--crash-on');
const probeLog = option('--probe-log');
const startLog = option('--start-log');

function crashIfAsked(file: string): void {
  if (crashOn !== null && path.basename(file).includes(crashOn)) process.kill(process.pid, 'SIGSEGV');
}

function hostile(backend: HostBackend): HostBackend {
  return {
    version: () => backend.version(),
    probe: (file, options) => {
      if (probeLog !== null) appendFileSync(probeLog, `${file}\n`);
      crashIfAsked(file);
      const target = file.endsWith('.stand-in') ? readFileSync(file, 'utf8').trim() : file;
      return backend.probe(target, options);
    },
    ...(backend.thumbnail
      ? {
          thumbnail: (request: Parameters<NonNullable<HostBackend['thumbnail']>>[0], signal: AbortSignal) => {
            crashIfAsked(request.file);
            return (backend.thumbnail as NonNullable<HostBackend['thumbnail']>)(request, signal);
          },
        }
      : {}),
  };
}

if (startLog !== null) appendFileSync(startLog, `${process.pid}\n`);
serveHost((kind) => hostile(loadBackend(kind)));
