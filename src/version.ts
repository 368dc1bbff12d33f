/** The project's version, as the API's OpenAPI document and `scanctl --version` report it. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The version in the nearest package.json above this file (src/ when run from source, dist/src/ when built). */
export function packageVersion(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? '0.0.0';
  }
  return '0.0.0';
}
