/**
 * Closed outputs: a reader that went away (`troupe run X | head -2`, a closed
 * terminal) never crashes troupe. Once a write to stdout or stderr fails
 * (EPIPE, EIO), that stream counts as closed: later writes are dropped, and
 * the commands that care are told (`troupe run` goes on, the log commands stop).
 */

type Output = NodeJS.WriteStream;

const closed = new WeakSet<Output>();
const listeners = new WeakMap<Output, Array<() => void>>();

/** From now on a write error on stdout or stderr marks that stream closed instead of ending the process. */
export function guardOutputs(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (listeners.has(stream)) continue;
    listeners.set(stream, []);
    stream.on("error", () => markClosed(stream));
    stream.on("close", () => markClosed(stream));
  }
}

function markClosed(stream: Output): void {
  if (closed.has(stream)) return;
  closed.add(stream);
  const waiting = listeners.get(stream) ?? [];
  listeners.set(stream, []);
  for (const listener of waiting) listener();
}

export function isClosed(stream: Output): boolean {
  return closed.has(stream) || stream.destroyed;
}

/** Calls `listener` once, when `stream` is found closed (at once if it already is). */
export function onClosed(stream: Output, listener: () => void): void {
  if (isClosed(stream)) return listener();
  const waiting = listeners.get(stream);
  if (waiting) waiting.push(listener);
  else listeners.set(stream, [listener]);
}

/**
 * Writes `chunk` and waits for the stream to take more (a full pipe makes a
 * fast writer wait). Resolves false once the stream is closed, never hangs on it.
 */
export function writeOut(stream: Output, chunk: string | Uint8Array): Promise<boolean> {
  if (isClosed(stream)) return Promise.resolve(false);
  if (stream.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    let settled = false;
    const done = (open: boolean) => {
      if (settled) return;
      settled = true;
      stream.off("drain", drained);
      resolve(open);
    };
    const drained = () => done(!isClosed(stream));
    stream.once("drain", drained);
    onClosed(stream, () => done(false));
  });
}
