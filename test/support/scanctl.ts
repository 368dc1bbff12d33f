/** `scanctl` run in-process, for tests that drive the API the way an operator's script would. */
import { Writable } from 'node:stream';
import { runCli } from '../../src/cli/main';

/** Runs `scanctl` against an API; resolves to its exit code and what it printed. */
export async function scanctl(baseUrl: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (text: string) => void): NodeJS.WritableStream =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        append(chunk.toString());
        callback();
      },
    });
  const code = await runCli(['--api-url', baseUrl, ...args], {
    stdout: sink((text) => (stdout += text)),
    stderr: sink((text) => (stderr += text)),
    cwd: process.cwd(),
    env: {},
  });
  return { code, stdout, stderr };
}
