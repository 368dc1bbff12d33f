/**
 * Picks a worker's prober from PROBER: libavformat in the media hosts
 * (`libav`), or an ffprobe process per file (`ffprobe`); unset, libav when its
 * bindings load on this machine, ffprobe otherwise. And its thumbnailer to
 * match: in the hosts when they run libav, one ffmpeg per picture otherwise.
 */
import type { Logger } from '../logger';
import type { FileProber } from '../probe/contained';
import { createHostThumbnailer, createThumbnailer, type Thumbnailer, type ThumbnailerOptions } from '../thumbnails/thumbnailer';
import { createIsolatedProber, type IsolatedProber, type IsolatedProberOptions } from './pool';
import type { ProberKind } from './protocol';

/** What openProber needs from the configuration. */
export interface ProberChoice {
  prober: ProberKind | undefined;
  ffprobePath: string | undefined;
  probeConcurrency: number;
  /** Thumbnails made at once in libav hosts (THUMBNAIL_CONCURRENCY); 1 when absent. */
  thumbnailConcurrency?: number;
  /** FS_CALL_TIMEOUT: the deadline of the hosts' checks and fingerprint reads. */
  fsCallTimeoutMs?: number;
}

/** The prober in use, and the version line its hosts report. */
export interface OpenedProber {
  prober: IsolatedProber;
  version: string;
}

/**
 * Starts the prober PROBER asks for, or with PROBER unset the in-process one
 * when it loads (its first host starts and reports its version) and ffprobe
 * otherwise; says which, once, in the log. Throws when the prober asked for
 * cannot run.
 */
export async function openProber(choice: ProberChoice, logger: Logger, extra: Partial<IsolatedProberOptions> = {}): Promise<OpenedProber> {
  const open = async (kind: ProberKind): Promise<OpenedProber> => {
    const prober = createIsolatedProber({
      ...extra,
      kind,
      ffprobePath: choice.ffprobePath,
      concurrency: choice.probeConcurrency,
      thumbnailConcurrency: choice.thumbnailConcurrency,
      fsCallTimeoutMs: choice.fsCallTimeoutMs,
      logger: { warn: (fields, message) => logger.warn(fields, message) },
    });
    try {
      return { prober, version: await prober.version() };
    } catch (error) {
      await prober.close();
      throw error;
    }
  };
  let opened: OpenedProber;
  let fallback: string | undefined;
  if (choice.prober !== undefined) {
    opened = await open(choice.prober);
  } else {
    try {
      opened = await open('libav');
    } catch (error) {
      fallback = error instanceof Error ? error.message : String(error);
      opened = await open('ffprobe');
    }
  }
  logger.info(
    {
      prober: opened.prober.kind,
      version: opened.version,
      concurrency: choice.probeConcurrency,
      ...(opened.prober.kind === 'ffprobe' ? { ffprobe: opened.prober.path } : {}),
      ...(fallback !== undefined ? { libavUnavailable: fallback } : {}),
    },
    choice.prober !== undefined ? `prober: ${opened.prober.kind} (PROBER)` : `prober: ${opened.prober.kind} (default${fallback !== undefined ? ', libav did not load' : ''})`,
  );
  return opened;
}

/**
 * The worker's thumbnailer: in its media hosts when they run libav (PROBER
 * `libav`, or unset and the bindings load), one ffmpeg per picture otherwise
 * (ffprobe hosts, or a prober that is not the hosts).
 */
export function thumbnailerFor(prober: FileProber | IsolatedProber, options: ThumbnailerOptions): Thumbnailer {
  if ('kind' in prober && prober.kind === 'libav') return createHostThumbnailer({ dir: options.dir, width: options.width, hosts: prober });
  return createThumbnailer(options);
}
