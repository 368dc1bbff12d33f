/**
 * Files that never end, for tests of time limits and cancels: FIFOs in a
 * folder of the test's, each stopped by stopFifos() after its test.
 */
import { constants, openSync, closeSync, writeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import execa from 'execa';

let fifoCount = 0;
const writers: Array<() => void> = [];

/** A FIFO nobody writes to: opening it for reading blocks in the kernel, where no interrupt reaches. */
export async function stuckFile(folder: string): Promise<string> {
  const file = path.join(folder, `stuck-${fifoCount++}.ts`);
  await execa('mkfifo', [file]);
  // After the test, a moment's writer lets whatever still waits on it (an orphaned ffprobe) read its end and exit.
  writers.push(() => {
    try {
      closeSync(openSync(file, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // No reader waits on it.
    }
  });
  return file;
}

/**
 * A FIFO fed a few hundred bytes of `source` (an MPEG-TS clip) every 20 ms,
 * for ever: a reader of it keeps reading (like a file on a slow network
 * mount), so only its time limit or a cancel ends it, through libavformat's
 * interrupt callback or a kill.
 */
export async function trickleFile(folder: string, source: string): Promise<string> {
  const file = path.join(folder, `trickle-${fifoCount++}.ts`);
  await execa('mkfifo', [file]);
  // Read-write: the open does not wait for a reader (Linux), and the FIFO always has a writer.
  const fd = openSync(file, 'r+');
  const data = readFileSync(source);
  let offset = 0;
  const timer = setInterval(() => {
    try {
      writeSync(fd, data.subarray(offset, offset + 376));
    } catch {
      // The pipe is full (nobody reads now): skip this tick.
    }
    offset = (offset + 376) % data.length;
  }, 20);
  writers.push(() => {
    clearInterval(timer);
    closeSync(fd);
  });
  return file;
}

/** Stops the writers of every FIFO made so far (call after each test). */
export function stopFifos(): void {
  for (const stop of writers.splice(0)) stop();
}
