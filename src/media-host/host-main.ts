/** The entry of a media host process, forked by the worker's pool (pool.ts): the real backends, served. */
import { loadBackend, serveHost } from './dispatch';

serveHost(loadBackend);
