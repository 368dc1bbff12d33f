/**
 * The environment of the processes that parse untrusted media (probe hosts,
 * ffprobe, ffmpeg): an allow-list, never the parent's whole environment. A
 * file crafted to exploit a demuxer would otherwise find DATABASE_URL,
 * API_TOKEN, TEMPORAL_API_KEY and the TLS key paths in its process.
 */

/** Variables a media child may need: where binaries and libraries are, the locale, the clock, temp space. */
const ALLOWED = ['PATH', 'LD_LIBRARY_PATH', 'DYLD_LIBRARY_PATH', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'TMP', 'TEMP', 'SYSTEMROOT', 'SystemRoot', 'WINDIR'];

/** The allow-listed variables of `source` (this process's environment by default), plus `extra`. */
export function mediaChildEnv(extra: Record<string, string> = {}, source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ALLOWED) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}
